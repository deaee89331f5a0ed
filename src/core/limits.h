/* limits.h -- compile-time bounds shared by every layer. */
#ifndef MTLAB_LIMITS_H
#define MTLAB_LIMITS_H

#define MTLAB_MAX_TASKS 16     /* tasks per model / dataset */
#define MTLAB_MAX_SINUSOIDS 64 /* m of the synthetic generator */

#endif
