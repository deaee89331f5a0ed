/* svg.c -- line charts as inline SVG (contract: svg.h).
 *
 * The plot box sits inside fixed margins (room for tick labels and axis
 * titles); the data range, padded by 4 % on each side and widened when it
 * is a single value, maps linearly onto the box.  Coordinates are written
 * with two decimals: finer than a pixel, and the same text every run. */
#include "plot/svg.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

#define SVG_LEFT       72 /* margins of the plot box, pixels */
#define SVG_RIGHT      24
#define SVG_TOP        34
#define SVG_BOTTOM     48
#define SVG_LEGEND_ROW 18
#define SVG_PAD        0.04 /* fraction of the data range added on each side */
#define SVG_TICKS      5    /* about this many ticks per axis */

static const char *const svg_colors[] = {"#0072b2", "#d55e00", "#009e73", "#cc79a7",
                                         "#e69f00", "#56b4e9", "#000000", "#999999"};
#define SVG_N_COLORS ((int)(sizeof svg_colors / sizeof svg_colors[0]))

void svg_put_escaped(FILE *f, const char *text) {
    for (const unsigned char *p = (const unsigned char *)text; p && *p; p++) {
        switch (*p) {
        case '&':
            fputs("&amp;", f);
            break;
        case '<':
            fputs("&lt;", f);
            break;
        case '>':
            fputs("&gt;", f);
            break;
        case '"':
            fputs("&quot;", f);
            break;
        case '\'':
            fputs("&#39;", f);
            break;
        default:
            fputc(*p < 0x20 && *p != '\t' && *p != '\n' ? '?' : *p, f);
        }
    }
}

typedef struct {
    double lo, hi;
} range_t;

static void range_add(range_t *r, double v) {
    if (!isfinite(v)) return;
    if (v < r->lo) r->lo = v;
    if (v > r->hi) r->hi = v;
}

/* Pads a range (a single value gets +-1 or +-10 %) so lines do not touch
 * the box. */
static range_t range_pad(range_t r) {
    if (r.lo > r.hi) return (range_t){0, 1};
    if (r.hi == r.lo) {
        double d = r.lo == 0 ? 1 : fabs(r.lo) * 0.1;
        return (range_t){r.lo - d, r.hi + d};
    }
    double d = (r.hi - r.lo) * SVG_PAD;
    return (range_t){r.lo - d, r.hi + d};
}

/* 1, 2 or 5 times a power of ten, near range / SVG_TICKS. */
static double tick_step(range_t r) {
    double raw = (r.hi - r.lo) / SVG_TICKS;
    double p = pow(10, floor(log10(raw)));
    double m = raw / p;
    return p * (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10);
}

/* Maps v in [lo, hi] onto pixels [a, b]. */
static double scale(double v, range_t r, double a, double b) {
    return a + (v - r.lo) / (r.hi - r.lo) * (b - a);
}

/* A tick label: %g of the tick rounded to the step (no 0.30000000000000004). */
static void put_tick_label(FILE *f, double v, double step) {
    if (fabs(v) < step * 1e-9) v = 0;
    fprintf(f, "%g", v);
}

void svg_put_lines(FILE *f, const svg_frame_t *frame, const svg_series_t *series, int n_series) {
    range_t xr = {INFINITY, -INFINITY}, yr = {INFINITY, -INFINITY};
    bool any = false;
    for (int s = 0; s < n_series; s++) {
        const svg_series_t *S = &series[s];
        for (int i = 0; i < S->n; i++) {
            if (!isfinite(S->x[i]) || !isfinite(S->y[i])) continue;
            any = true;
            range_add(&xr, S->x[i]);
            range_add(&yr, S->y[i]);
            if (S->lo && S->hi) {
                range_add(&yr, S->lo[i]);
                range_add(&yr, S->hi[i]);
            }
        }
    }
    xr = range_pad(xr);
    yr = range_pad(yr);
    const int W = frame->width, H = frame->height;
    const double left = SVG_LEFT, right = W - SVG_RIGHT, top = SVG_TOP, bottom = H - SVG_BOTTOM;
    const int total_h = H + SVG_LEGEND_ROW * n_series + 8;
    fprintf(f,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 "
            "%d %d\" font-family=\"sans-serif\" font-size=\"12\" data-x-range=\"%.17g %.17g\" "
            "data-y-range=\"%.17g %.17g\" data-box=\"%g %g %g %g\" role=\"img\">\n",
            W, total_h, W, total_h, xr.lo, xr.hi, yr.lo, yr.hi, left, top, right, bottom);
    fprintf(f, "<title>");
    svg_put_escaped(f, frame->title);
    fprintf(f, "</title>\n<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"white\"/>\n", W,
            total_h);
    fprintf(f, "<text x=\"%g\" y=\"20\" text-anchor=\"middle\" font-size=\"14\">", W / 2.0);
    svg_put_escaped(f, frame->title);
    fprintf(f, "</text>\n");
    /* grid and ticks */
    fprintf(f, "<g stroke=\"#dddddd\" stroke-width=\"1\">\n");
    const double xs = tick_step(xr), ys = tick_step(yr);
    for (double v = ceil(xr.lo / xs) * xs; v <= xr.hi; v += xs)
        fprintf(f, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n",
                scale(v, xr, left, right), top, scale(v, xr, left, right), bottom);
    for (double v = ceil(yr.lo / ys) * ys; v <= yr.hi; v += ys)
        fprintf(f, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n", left,
                scale(v, yr, bottom, top), right, scale(v, yr, bottom, top));
    fprintf(f, "</g>\n<g fill=\"#333333\">\n");
    for (double v = ceil(xr.lo / xs) * xs; v <= xr.hi; v += xs) {
        fprintf(f, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\">", scale(v, xr, left, right),
                bottom + 16);
        put_tick_label(f, v, xs);
        fprintf(f, "</text>\n");
    }
    for (double v = ceil(yr.lo / ys) * ys; v <= yr.hi; v += ys) {
        fprintf(f, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"end\">", left - 6,
                scale(v, yr, bottom, top) + 4);
        put_tick_label(f, v, ys);
        fprintf(f, "</text>\n");
    }
    fprintf(f, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\">", (left + right) / 2,
            bottom + 36);
    svg_put_escaped(f, frame->xlabel);
    fprintf(f,
            "</text>\n<text x=\"16\" y=\"%.2f\" text-anchor=\"middle\" "
            "transform=\"rotate(-90 16 %.2f)\">",
            (top + bottom) / 2, (top + bottom) / 2);
    svg_put_escaped(f, frame->ylabel);
    fprintf(f, "</text>\n</g>\n");
    fprintf(f,
            "<rect x=\"%g\" y=\"%g\" width=\"%g\" height=\"%g\" fill=\"none\" "
            "stroke=\"#333333\"/>\n",
            left, top, right - left, bottom - top);
    if (!any)
        fprintf(f, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\">no data</text>\n",
                (left + right) / 2, (top + bottom) / 2);
    /* bands, then lines over them */
    for (int s = 0; s < n_series; s++) {
        const svg_series_t *S = &series[s];
        bool band = S->lo && S->hi && S->n > 1;
        for (int i = 0; band && i < S->n; i++)
            band = isfinite(S->x[i]) && isfinite(S->lo[i]) && isfinite(S->hi[i]);
        if (!band) continue;
        fprintf(f, "<polygon fill=\"%s\" fill-opacity=\"0.18\" stroke=\"none\" points=\"",
                svg_colors[s % SVG_N_COLORS]);
        for (int i = 0; i < S->n; i++)
            fprintf(f, "%s%.2f,%.2f", i ? " " : "", scale(S->x[i], xr, left, right),
                    scale(S->lo[i], yr, bottom, top));
        for (int i = S->n - 1; i >= 0; i--)
            fprintf(f, " %.2f,%.2f", scale(S->x[i], xr, left, right),
                    scale(S->hi[i], yr, bottom, top));
        fprintf(f, "\"/>\n");
    }
    for (int s = 0; s < n_series; s++) {
        const svg_series_t *S = &series[s];
        const char *dash = (s / SVG_N_COLORS) % 2 ? " stroke-dasharray=\"6 3\"" : "";
        fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s points=\"",
                svg_colors[s % SVG_N_COLORS], dash);
        bool first = true;
        for (int i = 0; i < S->n; i++) {
            if (!isfinite(S->x[i]) || !isfinite(S->y[i])) continue;
            fprintf(f, "%s%.2f,%.2f", first ? "" : " ", scale(S->x[i], xr, left, right),
                    scale(S->y[i], yr, bottom, top));
            first = false;
        }
        fprintf(f, "\"><title>");
        svg_put_escaped(f, S->label);
        fprintf(f, "</title></polyline>\n");
        /* its legend row */
        const double ly = H + SVG_LEGEND_ROW * s + 4;
        fprintf(f,
                "<line x1=\"%g\" y1=\"%.2f\" x2=\"%g\" y2=\"%.2f\" stroke=\"%s\" "
                "stroke-width=\"2\"%s/>\n<text x=\"%g\" y=\"%.2f\">",
                left, ly + 9, left + 28, ly + 9, svg_colors[s % SVG_N_COLORS], dash, left + 36,
                ly + 13);
        svg_put_escaped(f, S->label);
        fprintf(f, "</text>\n");
    }
    fprintf(f, "</svg>\n");
}
