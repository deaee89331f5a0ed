-- schema.sql -- the mtlab run store (schema version 2): its tables.  The
-- views over them are in views.sql.
--
-- One SQLite file (default results.db) holds every experiment, its trials and
-- everything recorded about them.  The table, column and view names below are
-- the user's API: queries and the figure scripts in sql/ depend on them.
--
--   build/mtlab sql "SELECT model, avg(value) FROM v_final
--                    WHERE name='test/loss/t1' GROUP BY model"
--
-- mtlab applies this file (compiled into the binary by the Makefile) to a
-- new file.  Times are UTC ISO-8601 text ("2024-05-01T12:34:56Z"); durations
-- are seconds.  A NaN metric value is stored as NULL (SQLite has no NaN).

-- Store-wide settings: schema_version (an mtlab refuses a newer one and
-- upgrades an older one: version 1 -> 2 only recreated the views).
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT
);
INSERT INTO meta (key, value) VALUES ('schema_version', '2');

-- One row per experiment (a sweep file): its name, the sweep file's text,
-- when it was first registered (created) and last continued (updated), and
-- the mtlab version (git describe) that created it or last replaced its spec.
CREATE TABLE experiment (
    id           INTEGER PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    description  TEXT,
    spec         TEXT NOT NULL,
    created      TEXT,
    updated      TEXT,
    code_version TEXT
);

-- One row per trial: a model trained on one config (the canonical
-- "key=value;..." string of every resolved sweep key) with one repeat index.
-- status: pending -> running (claimed by host/pid) -> done | failed.
-- pid_start is the claiming process's start time (/proc/PID/stat field 22) so
-- a reused pid is not mistaken for the claimer.  seconds_store is the time
-- spent writing the results; n_params the number of model parameters
-- (written when the trial is registered, for every trial since schema
-- version 4: migrations/004-gates-routes.sql); final_step the step of the
-- final metrics (see v_final).
CREATE TABLE trial (
    id            INTEGER PRIMARY KEY,
    experiment_id INTEGER NOT NULL REFERENCES experiment (id),
    model         TEXT NOT NULL,
    repeat        INTEGER NOT NULL,
    config        TEXT NOT NULL,
    data_seed     INTEGER NOT NULL,
    init_seed     INTEGER NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('pending', 'running', 'done', 'failed')),
    error         TEXT,
    failed_step   INTEGER,
    host          TEXT,
    pid           INTEGER,
    pid_start     INTEGER,
    started       TEXT,
    finished      TEXT,
    seconds_data  REAL,
    seconds_train REAL,
    seconds_gates REAL,
    seconds_store REAL,
    n_params      INTEGER,
    final_step    INTEGER,
    UNIQUE (experiment_id, config, repeat)
);
CREATE INDEX trial_experiment_status ON trial (experiment_id, status);

-- The resolved sweep keys of a trial ("data.correlation", "train.lr", ...).
-- value is a number when the text is one (compare with numbers:
-- value < 0.01), else text.
CREATE TABLE param (
    trial_id INTEGER NOT NULL REFERENCES trial (id),
    key      TEXT NOT NULL,
    value,
    PRIMARY KEY (trial_id, key)
) WITHOUT ROWID;
CREATE INDEX param_key_value ON param (key, value);

-- Curves: one value per trial, metric name and evaluation step.  Names are
-- "SPLIT/MEASURE/TASK": test/loss/t1, val/loss/total, test/auc/t2, ...
CREATE TABLE metric (
    trial_id INTEGER NOT NULL REFERENCES trial (id),
    name     TEXT NOT NULL,
    step     INTEGER NOT NULL,
    value    REAL,
    PRIMARY KEY (trial_id, name, step)
) WITHOUT ROWID;
CREATE INDEX metric_name_step ON metric (name, step);

-- Gate scores on the test set: mean and standard deviation of the weight a
-- gate ("t1", "shared", "l2/t1", ...) gives each expert (0-based) ...
-- Version 4 (migrations/004-gates-routes.sql) adds the columns level, owner,
-- kind ('softmax' | 'weights') and hist_lo, hist_hi (the histogram's range).
CREATE TABLE gate (
    trial_id INTEGER NOT NULL REFERENCES trial (id),
    gate     TEXT NOT NULL,
    expert   INTEGER NOT NULL,
    mean     REAL,
    std      REAL,
    PRIMARY KEY (trial_id, gate, expert)
) WITHOUT ROWID;

-- ... and their histogram: every bin of [0, 1] (since version 4: of
-- [gate.hist_lo, gate.hist_hi]) is stored, zeros included, so the counts of
-- one (trial, gate, expert) sum to the test-set size.
CREATE TABLE gate_hist (
    trial_id INTEGER NOT NULL REFERENCES trial (id),
    gate     TEXT NOT NULL,
    expert   INTEGER NOT NULL,
    bin      INTEGER NOT NULL,
    count    INTEGER NOT NULL,
    PRIMARY KEY (trial_id, gate, expert, bin)
) WITHOUT ROWID;

-- Learned routes (SNR coding variables, MTNAS derived routes): in `layer`, the
-- connection src -> dst of a given kind has weight value.  The conventions
-- (layer and index numbering, the kinds 'z', 'log_alpha', 'p_open', 'value',
-- 'query', 'prob') are in migrations/004-gates-routes.sql.
CREATE TABLE route (
    trial_id INTEGER NOT NULL REFERENCES trial (id),
    layer    INTEGER NOT NULL,
    src      INTEGER NOT NULL,
    dst      INTEGER NOT NULL,
    kind     TEXT NOT NULL,
    value    REAL,
    PRIMARY KEY (trial_id, kind, layer, src, dst)
) WITHOUT ROWID;

-- The named tensors of the final parameters: tensor `name` is rows x cols
-- values (row-major) starting `offset` values into weights.data.
CREATE TABLE tensor (
    trial_id INTEGER NOT NULL REFERENCES trial (id),
    name     TEXT NOT NULL,
    rows     INTEGER NOT NULL,
    cols     INTEGER NOT NULL,
    offset   INTEGER NOT NULL,
    PRIMARY KEY (trial_id, name)
) WITHOUT ROWID;

-- The final parameters of a trial: n values of dtype ("float32" or
-- "float64", little-endian) in one blob.
CREATE TABLE weights (
    trial_id INTEGER PRIMARY KEY REFERENCES trial (id),
    dtype    TEXT NOT NULL,
    n        INTEGER NOT NULL,
    data     BLOB
);
