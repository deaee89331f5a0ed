/* gp_heatmap.c -- the GP_HEATMAP style of gp.c (contract: gp.h): a matrix
 * per panel, such as AdaTT Fig 3's tasks x experts weights.
 *
 * Each block's rows are its cells: (x, y) integer positions, z the value.
 * A cell is a unit box coloured by z on one palette shared by every panel
 * (so panels compare by colour), with z printed in it to two decimals: the
 * figure must be readable without a colour scale.  y runs downwards (row 1
 * at the top), as a matrix is read. */
#include "plot/gp.h"

#include <math.h>
#include <stdlib.h>

#include <sqlite3.h>

/* Column c of row r as a number (NAN for NULL or text); c is 0-based. */
static double num_at(const store_table_t *t, int r, int c) {
    const char *s = store_table_cell(t, r, c);
    int type = store_table_type(t, r, c);
    if (!s || (type != SQLITE_INTEGER && type != SQLITE_FLOAT)) return NAN;
    return strtod(s, NULL);
}

void gp_heatmap_frame(FILE *f, const store_table_t *t, int cx, int cy, int cz) {
    double x_hi = 1, y_hi = 1, z_lo = 0, z_hi = 0;
    for (int r = 0; r < t->n_rows; r++) {
        double x = num_at(t, r, cx - 1), y = num_at(t, r, cy - 1), z = num_at(t, r, cz - 1);
        if (isfinite(x) && x > x_hi) x_hi = x;
        if (isfinite(y) && y > y_hi) y_hi = y;
        if (isfinite(z) && z < z_lo) z_lo = z;
        if (isfinite(z) && z > z_hi) z_hi = z;
    }
    if (!(z_hi > z_lo)) z_hi = z_lo + 1;
    fprintf(f,
            "set palette defined (0 \"#ffffff\", 1 \"#f0a35e\", 2 \"#d55e00\")\n"
            "set cbrange [%.6g:%.6g]\n"
            "set xtics 1\nset ytics 1\nset format x \"%%g\"\nset format y \"%%g\"\n"
            "set xrange [0.5:%g]\nset yrange [%g:0.5]\n"
            "set grid noxtics noytics\nset tics scale 0\nunset key\n",
            z_lo, z_hi, x_hi + 0.5, y_hi + 0.5);
}

void gp_heatmap_item(FILE *f, int k, int cx, int cy, int cz) {
    fprintf(f,
            "$d%d using %d:%d:(0.5):(0.5):%d with boxxyerror fs solid 1.0 noborder lc palette "
            "notitle, \\\n    $d%d using %d:%d:(sprintf(\"%%.2f\", $%d)) with labels "
            "font \",9\" notitle",
            k + 1, cx, cy, cz, k + 1, cx, cy, cz);
}
