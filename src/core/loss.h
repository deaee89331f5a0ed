/* loss.h -- per-task losses on a batch of predictions.
 *
 * Predictions and labels are [B, T] row-major (one column per task).  Each
 * task's loss is the mean over the batch; the total training loss is
 * sum_k weight_k * loss_k.  Regression tasks use MSE, binary tasks binary
 * cross-entropy on logits (labels 0/1), computed in a form that is stable for
 * large |logit|. */
#ifndef MTLAB_LOSS_H
#define MTLAB_LOSS_H

#include "core/real.h"

typedef enum { TASK_REGRESSION = 0, TASK_BINARY = 1 } task_kind_t;

/* Mean loss of task column k over the batch: pred, label [B, T]. */
double loss_task(task_kind_t kind, const real *pred, const real *label, int B, int T, int k);

/* dpred[:, k] = weight * d(mean loss_k)/d pred[:, k] for task column k. */
void loss_task_grad(task_kind_t kind, const real *pred, const real *label, int B, int T, int k,
                    real weight, real *dpred);

#endif
