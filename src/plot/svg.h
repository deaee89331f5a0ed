/* svg.h -- line charts as inline SVG, written by mtlab itself (no gnuplot,
 * no script): what `mtlab report` embeds in its HTML file.
 *
 * A chart is a frame (title, axis labels, size) and series: each a line
 * through (x[i], y[i]) with an optional band [lo[i], hi[i]] drawn as a
 * translucent polygon behind it.  Axes get "nice" ticks (1, 2 or 5 times a
 * power of ten) over the data's range; the legend lists the series below
 * the plot, one a line, in the series' colours (Okabe-Ito, colour-blind
 * safe; dashed after the eighth).  Points whose y is not finite are left
 * out; a band is drawn only when every lo and hi of the series is finite.
 *
 * All text goes through svg_put_escaped, so the output is well-formed XML
 * inside HTML whatever the labels hold. */
#ifndef MTLAB_PLOT_SVG_H
#define MTLAB_PLOT_SVG_H

#include <stdio.h>

/* Writes text with & < > " ' as entities (safe in element text and in
 * double-quoted attributes); control characters other than tab and newline
 * become '?', so the result is always valid XML text. */
void svg_put_escaped(FILE *f, const char *text);

typedef struct {
    const char *label;
    int n;
    const double *x, *y;   /* [n] */
    const double *lo, *hi; /* [n] the band, or NULL */
} svg_series_t;

typedef struct {
    const char *title, *xlabel, *ylabel;
    int width, height; /* pixels of the plot (the legend adds below) */
} svg_frame_t;

/* Writes one <svg> element.  With no finite point at all it still writes
 * the frame, with "no data" in it.  The axes' ranges are attributes of the
 * element, data-x-range="LO HI" and data-y-range="LO HI" (x = LO is drawn at
 * the plot's left edge, y = LO at its bottom), so a reader can map the
 * points back to values. */
void svg_put_lines(FILE *f, const svg_frame_t *frame, const svg_series_t *series, int n_series);

#endif
