/* metrics.h -- what a trial measures, and the one place metric names are made.
 *
 * A metric name is "SPLIT/MEASURE/TASK" (sql/schema.sql, table `metric`):
 *     train/loss/t1   val/loss/total   test/auc/t2   test/ne/t2
 *     test/baseline/total   data/pearson/t1-t2   train/penalty
 *     model/serving_params  (routing families: the curve of the serving size)
 * metric_name() builds every one of them; nothing else formats a name.
 *
 * Measures of binary tasks (labels 0/1, predictions logits):
 *   - AUC: the probability that a random positive example scores above a
 *     random negative one, ties counting one half (Mann-Whitney U / (n+ n-)),
 *     computed exactly from mid-ranks in O(n log n).  Ranked on the logits,
 *     which order the examples as the probabilities do without the ties
 *     that a saturated sigmoid would create.  Undefined (NAN, stored as NULL)
 *     when the split has no positive or no negative example.
 *   - NE, normalised entropy (He et al., ADKDD 2014, the AdaTT paper's test
 *     measure): the mean binary cross-entropy of the predictions divided by
 *     the entropy of the base rate p, H(p) = -p ln p - (1-p) ln(1-p), i.e. by
 *     the cross-entropy of always predicting p.  The base rate is the
 *     positive rate of the TRAINING labels (He et al.'s "background CTR"),
 *     the same for every split, so val and test NE share one denominator and
 *     NE < 1 means better than predicting the training rate.  NAN when p is
 *     0 or 1. */
#ifndef MTLAB_METRICS_H
#define MTLAB_METRICS_H

#include <stddef.h>

#include "core/real.h"

typedef enum {
    METRIC_TRAIN = 0, /* mean over the mini-batches since the previous evaluation */
    METRIC_VAL,
    METRIC_TEST,
    METRIC_DATA,  /* properties of the dataset itself (step 0) */
    METRIC_MODEL, /* properties of the model at an evaluation (its serving size) */
    METRIC_N_SPLITS
} metric_split_t;

typedef enum {
    MEASURE_LOSS = 0, /* MSE or binary cross-entropy; "total": the weighted sum */
    MEASURE_AUC,      /* binary tasks */
    MEASURE_NE,       /* binary tasks */
    MEASURE_PENALTY,  /* the model's penalty term (no task part) */
    MEASURE_BASELINE, /* loss of predicting the training mean */
    MEASURE_PEARSON,  /* label correlation of a pair of tasks */
    MEASURE_SERVING,  /* parameters of the served model (model_serving_params) */
    METRIC_N_MEASURES
} metric_measure_t;

/* Longest name metric_name() makes, with its terminating 0. */
#define METRIC_NAME_MAX 48
/* The task argument of a measure that has no task part (the penalty). */
#define METRIC_WHOLE (-1)

/* One metric of a trial: task in [0, T) is task task+1, T the total,
 * METRIC_WHOLE none; for MEASURE_PEARSON it is metric_pair_index(i, j, T). */
typedef struct {
    metric_split_t split;
    metric_measure_t measure;
    int task;
} metric_id_t;

/* Writes the name of `id` for a model of T tasks into out[n]:
 * "SPLIT/MEASURE/tK", ".../total", "SPLIT/MEASURE" (METRIC_WHOLE) or
 * "data/pearson/tI-tJ".  Returns 0, or -1 (out then holds "") when the id
 * is out of range or the name does not fit. */
int metric_name(metric_id_t id, int T, char *out, size_t n);

/* Index of the task pair i < j among the T(T-1)/2 pairs in row order
 * (0-1, 0-2, ..., 1-2, ...): the `task` of a MEASURE_PEARSON id. */
int metric_pair_index(int i, int j, int T);

/* One example for AUC: its score (a logit) and 0/1 label. */
typedef struct {
    real score;
    real label;
} metric_scored_t;

/* Exact AUC of ex[0..n) (labels > 0.5 are positive), ties counting one half.
 * Sorts ex in place.  NAN when there is no positive or no negative example,
 * or a score is NaN. */
double metric_auc(metric_scored_t *ex, int n);

/* H(p) = -p ln p - (1-p) ln(1-p) in nats (0 at p = 0 and p = 1). */
double metric_binary_entropy(double p);

/* Normalised entropy: mean cross-entropy bce (nats) / H(base_rate).  NAN
 * when base_rate is not in (0, 1). */
double metric_ne(double bce, double base_rate);

#endif
