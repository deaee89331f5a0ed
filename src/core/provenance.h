/* provenance.h -- what built and runs this process: the facts a stored
 * trial's bits depend on (binary version, compiler and flags, `real`,
 * OpenBLAS version and kernel, CPU, host).  Recorded once per `mtlab run`
 * invocation (the store's run table, sql/migrations/006-provenance.sql) and
 * compared by `mtlab show` and `mtlab train --expect-blas-core`.
 *
 * OpenBLAS kernel choice.  A DYNAMIC_ARCH OpenBLAS picks its kernels (its
 * "core") from the CPU when the library loads, and reads OPENBLAS_CORETYPE
 * then; OpenBLAS 0.3.21 picks Haswell on AVX-512 CPUs it does not know (Zen
 * 4).  MTLAB_BLAS_CORE=NAME asks mtlab for a core: provenance_force_core()
 * (called first thing in main) sets OPENBLAS_CORETYPE and re-executes the
 * binary so the library loads with it.  Unset, OpenBLAS's own pick stays, so
 * existing stores stay bit-comparable. */
#ifndef MTLAB_PROVENANCE_H
#define MTLAB_PROVENANCE_H

#include <stdbool.h>

#include "core/err.h"

#define PROVENANCE_TEXT_MAX 512

typedef struct {
    char mtlab_version[128];
    bool dirty;
    char compiler[128];
    char cflags[PROVENANCE_TEXT_MAX];
    const char *real_type; /* "float" or "double" */
    char blas_version[64];
    char blas_config[PROVENANCE_TEXT_MAX];
    char blas_core[64];
    char blas_core_forced[64]; /* "" when OpenBLAS picked */
    int blas_threads;
    char cpu_model[256];
    char host[256];
} provenance_t;

/* Fills *p with this process's facts. */
void provenance_collect(provenance_t *p);

/* The OpenBLAS core running now (openblas_get_corename()). */
const char *provenance_blas_core(void);

/* MTLAB_BLAS_CORE: when set and OPENBLAS_CORETYPE does not say the same,
 * sets it and re-executes /proc/self/exe with argv (returns only on
 * failure: -1 with *err).  When OpenBLAS already runs with it, checks that
 * the core it runs is the one asked for (OpenBLAS falls back to its own
 * pick for a name it does not know): ERR_USAGE naming the variable if not.
 * 0 when nothing is asked or all is well. */
int provenance_force_core(char **argv, err_t *err);

#endif
