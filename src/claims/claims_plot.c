/* claims_plot.c -- the claims table drawn as a gnuplot 5 script: one row
 * of boxes per claim, one box per condition, coloured by verdict (green
 * holds, red fails, grey undecided, white no data) and labelled with the
 * condition and the support.  Conditions differ between claims ("moe=omoe",
 * "correlation=0.5 vs=mmoe"), so each row has its own boxes rather than a
 * shared condition axis. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "claims/claims.h"
#include "plot/gp.h"

static const char *const verdict_rgb[] = {
    [CLAIM_HOLDS] = "#1a9850",
    [CLAIM_FAILS] = "#d73027",
    [CLAIM_UNDECIDED] = "#bdbdbd",
    [CLAIM_NO_DATA] = "#ffffff",
};

int claims_plot(const claims_t *c, const char *experiment, const char *path, err_t *err) {
    size_t len = strlen(path);
    if (len < 4 || strcmp(path + len - 3, ".gp") != 0)
        return err_set(err, ERR_USAGE, "--plot %s: the script's name must end in .gp", path);
    FILE *f = fopen(path, "w");
    if (!f) return err_set(err, ERR_FAIL, "cannot write %s: %s", path, strerror(errno));

    /* Rows: claims in order; columns: the most conditions of a claim. */
    int n_claims = 0, max_cond = 1;
    for (int i = 0, k; i < c->n; i = k, n_claims++) {
        for (k = i + 1; k < c->n && strcmp(c->rows[k].claim, c->rows[i].claim) == 0; k++)
            ;
        if (k - i > max_cond) max_cond = k - i;
    }
    const int width = 260 + 300 * max_cond, height = 120 + 70 * (n_claims ? n_claims : 1);
    fprintf(f,
            "# mtlab claims %s: every claim (row) under every condition (box), coloured by\n"
            "# verdict: green holds, red fails, grey undecided, white no data; the label\n"
            "# gives the condition and the bootstrap support.\n",
            experiment);
    fprintf(f,
            "if (!exists(\"keep_terminal\")) {\n"
            "    if (strstrt(GPVAL_TERMINALS, \"pngcairo\") > 0) {\n"
            "        set terminal pngcairo size %d,%d font \"sans,9\"\n"
            "    } else {\n"
            "        set terminal png size %d,%d\n"
            "    }\n"
            "    set output ",
            width, height, width, height);
    char image[4096];
    snprintf(image, sizeof image, "%.*s.png", (int)(len - 3), path);
    gp_put_quoted(f, image);
    fprintf(f, "\n}\nset termoption noenhanced\nset title ");
    char title[512];
    snprintf(title, sizeof title, "Claims on %s", experiment);
    gp_put_quoted(f, title);
    fprintf(f,
            "\nunset key\nunset xtics\nset border 0\nset xrange [-0.5:%d.5]\n"
            "set yrange [%d:-0.5]\nset lmargin 30\nset ytics scale 0 (",
            max_cond - 1, n_claims ? n_claims : 1);
    /* one x cell per condition index; y: the claim index, top down */
    for (int i = 0, row = 0, k; i < c->n; i = k, row++) {
        for (k = i + 1; k < c->n && strcmp(c->rows[k].claim, c->rows[i].claim) == 0; k++)
            ;
        fprintf(f, "%s", row ? ", " : "");
        gp_put_quoted(f, c->rows[i].claim);
        fprintf(f, " %d", row);
    }
    fprintf(f, ")\n$cells << EOD\n");
    for (int i = 0, row = 0, k; i < c->n; i = k, row++) {
        for (k = i + 1; k < c->n && strcmp(c->rows[k].claim, c->rows[i].claim) == 0; k++)
            ;
        for (int j = i; j < k; j++) {
            const claim_result_t *r = &c->rows[j];
            char verdict[128];
            if (isnan(r->support))
                snprintf(verdict, sizeof verdict, "%s", claim_verdict_name(r->verdict));
            else
                snprintf(verdict, sizeof verdict, "%s, support %.2f",
                         claim_verdict_name(r->verdict), r->support);
            unsigned rgb;
            sscanf(verdict_rgb[r->verdict] + 1, "%x", &rgb);
            fprintf(f, "%d %d %u ", j - i, row, rgb);
            gp_put_quoted(f, r->condition && r->condition[0] ? r->condition : "(all)");
            fputc(' ', f);
            gp_put_quoted(f, verdict);
            fputc('\n', f);
        }
    }
    fprintf(f, "EOD\n"
               "plot $cells using 1:2:(0.48):(0.42):3 with boxxyerror fill solid 1 "
               "border lc rgb \"black\" lc rgb variable, \\\n"
               "     $cells using 1:2:4 with labels offset 0,0.6 font \",8\", \\\n"
               "     $cells using 1:2:5 with labels offset 0,-0.6 font \",8\"\n");
    if (fclose(f) != 0) return err_set(err, ERR_FAIL, "cannot write %s: %s", path, strerror(errno));
    return 0;
}
