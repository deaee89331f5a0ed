-- 008-route-steps.sql -- schema version 8: the routes of a routing family
-- (SNR, MTNAS) at every evaluation step, not only at the end.
--
-- route_step has the columns of route (conventions: 004-gates-routes.sql)
-- plus `step`, the training step of the evaluation the routes were read at
-- (the steps of the trial's metric curves: every train.eval_every steps and
-- the last).  Each evaluation stores every route the model declares, of
-- every kind ('z', 'log_alpha', 'p_open' for SNR), so the rows of one
-- (trial, step) are a full snapshot.  The route table keeps the FINAL routes
-- (those of the last evaluation, what the drawings read), written only for a
-- trial that finished; a failed trial keeps its route_step rows up to the
-- failure.  The primary key serves the usual reads: one kind of one trial
-- over the steps, or at one step.
--
-- The serving size of such a family is a curve in the metric table, named
-- model/serving_params (its parameters once closed connections are removed;
-- src/train/metrics.h).
CREATE TABLE route_step (
    trial_id INTEGER NOT NULL REFERENCES trial (id),
    step     INTEGER NOT NULL,
    layer    INTEGER NOT NULL,
    src      INTEGER NOT NULL,
    dst      INTEGER NOT NULL,
    kind     TEXT NOT NULL,
    value    REAL,
    PRIMARY KEY (trial_id, kind, step, layer, src, dst)
) WITHOUT ROWID;
