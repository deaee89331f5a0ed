/* metrics.c -- metric names, exact AUC and normalised entropy (metrics.h). */
#include "train/metrics.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static const char *const split_names[METRIC_N_SPLITS] = {"train", "val", "test", "data", "model"};
static const char *const measure_names[METRIC_N_MEASURES] = {
    "loss", "auc", "ne", "penalty", "baseline", "pearson", "serving_params",
};

int metric_pair_index(int i, int j, int T) {
    /* pairs of rows 0..i-1: (T-1) + (T-2) + ... + (T-i) */
    return i * (2 * T - i - 1) / 2 + (j - i - 1);
}

/* The pair (i, j) of metric_pair_index p, or -1 when p is out of range. */
static int pair_of_index(int p, int T, int *i, int *j) {
    for (int a = 0; a < T; a++)
        for (int b = a + 1; b < T; b++)
            if (metric_pair_index(a, b, T) == p) {
                *i = a;
                *j = b;
                return 0;
            }
    return -1;
}

int metric_name(metric_id_t id, int T, char *out, size_t n) {
    if (n > 0) out[0] = '\0';
    if ((unsigned)id.split >= METRIC_N_SPLITS || (unsigned)id.measure >= METRIC_N_MEASURES ||
        T < 1 || n == 0)
        return -1;
    const char *split = split_names[id.split], *measure = measure_names[id.measure];
    int len;
    if (id.measure == MEASURE_PEARSON) {
        int i, j;
        if (pair_of_index(id.task, T, &i, &j)) return -1;
        len = snprintf(out, n, "%s/%s/t%d-t%d", split, measure, i + 1, j + 1);
    } else if (id.task == METRIC_WHOLE) {
        len = snprintf(out, n, "%s/%s", split, measure);
    } else if (id.task == T) {
        len = snprintf(out, n, "%s/%s/total", split, measure);
    } else if (id.task >= 0 && id.task < T) {
        len = snprintf(out, n, "%s/%s/t%d", split, measure, id.task + 1);
    } else {
        return -1;
    }
    if (len < 0 || (size_t)len >= n) {
        out[0] = '\0';
        return -1;
    }
    return 0;
}

static int by_score(const void *a, const void *b) {
    real x = ((const metric_scored_t *)a)->score, y = ((const metric_scored_t *)b)->score;
    return (x > y) - (x < y);
}

double metric_auc(metric_scored_t *ex, int n) {
    for (int i = 0; i < n; i++)
        if (isnan(ex[i].score)) return NAN; /* no order: the comparison would be inconsistent */
    qsort(ex, (size_t)n, sizeof *ex, by_score);
    /* Walk groups of equal scores from the lowest: each positive beats every
     * negative below its group and ties with the negatives in it.  The sum
     * depends only on the groups' label counts, not on the (unstable) order
     * within a group.  Counts stay below 2^53, so the sums are exact. */
    double wins = 0, neg_below = 0, pos = 0;
    for (int start = 0, end; start < n; start = end) {
        double p = 0, q = 0;
        for (end = start; end < n && ex[end].score == ex[start].score; end++) {
            if (ex[end].label > 0.5)
                p++;
            else
                q++;
        }
        wins += p * neg_below + 0.5 * p * q;
        neg_below += q;
        pos += p;
    }
    if (pos == 0 || neg_below == 0) return NAN;
    return wins / (pos * neg_below);
}

double metric_binary_entropy(double p) {
    if (!(p > 0 && p < 1)) return 0;
    return -p * log(p) - (1 - p) * log1p(-p);
}

double metric_ne(double bce, double base_rate) {
    if (!(base_rate > 0 && base_rate < 1)) return NAN;
    return bce / metric_binary_entropy(base_rate);
}
