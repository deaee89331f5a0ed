#include "core/loss.h"

#include <math.h>

/* log(1 + exp(z)) without overflow. */
static double softplus(double z) { return z > 0 ? z + log1p(exp(-z)) : log1p(exp(z)); }

double loss_task(task_kind_t kind, const real *pred, const real *label, int B, int T, int k) {
    double sum = 0;
    for (int b = 0; b < B; b++) {
        double p = pred[(size_t)b * T + k], y = label[(size_t)b * T + k];
        if (kind == TASK_BINARY) /* -y log s(p) - (1-y) log(1 - s(p)) */
            sum += softplus(p) - y * p;
        else
            sum += (p - y) * (p - y);
    }
    return sum / B;
}

void loss_task_grad(task_kind_t kind, const real *pred, const real *label, int B, int T, int k,
                    real weight, real *dpred) {
    const double scale = (double)weight / B;
    for (int b = 0; b < B; b++) {
        size_t i = (size_t)b * T + k;
        double p = pred[i], y = label[i];
        double g = kind == TASK_BINARY ? 1.0 / (1.0 + exp(-p)) - y : 2.0 * (p - y);
        dpred[i] = (real)(scale * g);
    }
}
