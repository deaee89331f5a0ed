/* provenance.c -- this process's build and machine facts (see provenance.h). */
#include "core/provenance.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <cblas.h>

#include "core/real.h"
#include "core/version.h"

/* OpenBLAS's own declarations (cblas.h has them in 0.3.x; declared here so
 * an older header does not matter). */
char *openblas_get_config(void);
char *openblas_get_corename(void);
int openblas_get_num_threads(void);

#ifndef MTLAB_CFLAGS
#define MTLAB_CFLAGS "unknown"
#endif

#if defined(__clang__)
#define PROVENANCE_COMPILER "clang " __clang_version__
#elif defined(__GNUC__)
#define PROVENANCE_COMPILER "gcc " __VERSION__
#else
#define PROVENANCE_COMPILER "unknown"
#endif

const char *provenance_blas_core(void) {
    const char *core = openblas_get_corename();
    return core ? core : "unknown";
}

/* /proc/cpuinfo's first "model name", or "unknown". */
static void cpu_model(char *out, size_t size) {
    snprintf(out, size, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) != 0) continue;
        const char *colon = strchr(line, ':');
        if (!colon) continue;
        colon++;
        while (*colon == ' ' || *colon == '\t')
            colon++;
        snprintf(out, size, "%s", colon);
        out[strcspn(out, "\n")] = '\0';
        break;
    }
    fclose(f);
}

void provenance_collect(provenance_t *p) {
    memset(p, 0, sizeof *p);
    const char *version = mtlab_version();
    snprintf(p->mtlab_version, sizeof p->mtlab_version, "%s", version);
    size_t n = strlen(version);
    p->dirty = n >= 6 && strcmp(version + n - 6, "-dirty") == 0;
    snprintf(p->compiler, sizeof p->compiler, "%s", PROVENANCE_COMPILER);
    snprintf(p->cflags, sizeof p->cflags, "%s", MTLAB_CFLAGS);
    p->real_type = REAL_NAME;
    const char *config = openblas_get_config();
    snprintf(p->blas_config, sizeof p->blas_config, "%s", config ? config : "unknown");
    /* "OpenBLAS 0.3.21 NO_LAPACKE ...": the first two words. */
    int words = 0;
    size_t k = 0;
    for (; p->blas_config[k] && k + 1 < sizeof p->blas_version; k++) {
        if (p->blas_config[k] == ' ' && ++words == 2) break;
        p->blas_version[k] = p->blas_config[k];
    }
    p->blas_version[k] = '\0';
    snprintf(p->blas_core, sizeof p->blas_core, "%s", provenance_blas_core());
    const char *forced = getenv("OPENBLAS_CORETYPE");
    snprintf(p->blas_core_forced, sizeof p->blas_core_forced, "%s", forced ? forced : "");
    p->blas_threads = openblas_get_num_threads();
    cpu_model(p->cpu_model, sizeof p->cpu_model);
    if (gethostname(p->host, sizeof p->host) != 0) snprintf(p->host, sizeof p->host, "localhost");
    p->host[sizeof p->host - 1] = '\0';
}

int provenance_force_core(char **argv, err_t *err) {
    const char *want = getenv("MTLAB_BLAS_CORE");
    if (!want || !*want) return 0;
    const char *have = getenv("OPENBLAS_CORETYPE");
    if (!have || strcmp(have, want) != 0) {
        if (setenv("OPENBLAS_CORETYPE", want, 1) != 0)
            return err_set(err, ERR_FAIL, "MTLAB_BLAS_CORE=%s: cannot set OPENBLAS_CORETYPE", want);
        execv("/proc/self/exe", argv);
        return err_set(err, ERR_FAIL, "MTLAB_BLAS_CORE=%s: cannot re-execute mtlab", want);
    }
    if (strcasecmp(provenance_blas_core(), want) != 0)
        return err_set(err, ERR_USAGE,
                       "MTLAB_BLAS_CORE=%s: OpenBLAS runs its %s kernels instead (it has no core "
                       "of that name, or this CPU cannot run it)",
                       want, provenance_blas_core());
    return 0;
}
