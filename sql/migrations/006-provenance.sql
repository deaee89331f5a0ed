-- 006-provenance.sql -- schema version 6: where and how each trial ran.
--
-- A trial's bits are promised only for the same binary and BLAS kernel: a
-- rerun of a stored trial elsewhere needs to know what ran it.  One row of
-- `run` per `mtlab run` invocation (per shard of a cluster sweep), referenced
-- by the trials it ran (trial.run_id: the invocation that last claimed the
-- trial; NULL for trials run before this version).
--   started          when the invocation started (UTC ISO-8601)
--   host             the machine (gethostname)
--   mtlab_version    `git describe --always --dirty` of the build
--   dirty            1 when built from a tree with uncommitted changes
--   compiler         e.g. "gcc 12.2.0"
--   cflags           the flags the binary was compiled with
--   real_type        'float' (the mtlab binary) or 'double'
--   sqlite_version   the SQLite library's
--   blas_version     e.g. "OpenBLAS 0.3.21"
--   blas_config      openblas_get_config()
--   blas_core        the kernel set OpenBLAS runs (openblas_get_corename():
--                    Haswell, SkylakeX, Zen, ...): results are bit-exact
--                    across machines only for the same core
--   blas_core_forced the core asked for (MTLAB_BLAS_CORE or OPENBLAS_CORETYPE),
--                    NULL when OpenBLAS picked its own
--   blas_threads     BLAS threads per worker (1: mtlab runs one per trial)
--   cpu_model        /proc/cpuinfo's model name
--   jobs             worker processes of the invocation
--   shard            'I/N' for `mtlab run --shard I/N`, else NULL
CREATE TABLE run (
    id               INTEGER PRIMARY KEY,
    started          TEXT,
    host             TEXT,
    mtlab_version    TEXT,
    dirty            INTEGER,
    compiler         TEXT,
    cflags           TEXT,
    real_type        TEXT,
    sqlite_version   TEXT,
    blas_version     TEXT,
    blas_config      TEXT,
    blas_core        TEXT,
    blas_core_forced TEXT,
    blas_threads     INTEGER,
    cpu_model        TEXT,
    jobs             INTEGER,
    shard            TEXT
);
ALTER TABLE trial ADD COLUMN run_id INTEGER REFERENCES run (id);
