/* dataset.h -- in-memory datasets: inputs and per-task labels.
 *
 * A data_t holds the three splits a trial uses.  Every split stores
 * x[n, d] and y[n, T] row-major in `real`; task k is a regression task or a
 * binary one (labels 0/1), as `kind[k]` says. */
#ifndef MTLAB_DATASET_H
#define MTLAB_DATASET_H

#include "core/limits.h"
#include "core/loss.h"
#include "core/real.h"

typedef struct {
    int n;   /* examples */
    real *x; /* [n, d] */
    real *y; /* [n, T] */
} dataset_t;

typedef struct {
    int d, T;
    task_kind_t kind[MTLAB_MAX_TASKS];
    dataset_t train, val, test;
} data_t;

/* Frees the splits' buffers (the data_t itself is the caller's). */
void data_free(data_t *data);

#endif
