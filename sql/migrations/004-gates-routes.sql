-- 004-gates-routes.sql -- schema version 4: gates of any level and kind,
-- the route conventions, a parameter count for every trial.
--
-- Gates.  Multi-level models (ML-MMoE, PLE/CGC, AdaTT) have a gate per
-- level and per owner, and AdaTT's effective weights (softmax + native
-- weight) lie outside [0, 1].  Each gate row now says
--   level    1-based level of the gate (1 for single-level models);
--   owner    what its mixture feeds: a task "t1", the shared module
--            "shared", or a next-level expert "e3";
--   kind     'softmax' (weights in [0, 1], each row sums to 1) or 'weights'
--            (raw mixture weights of any sign and size);
--   hist_lo, hist_hi
--            the range of its gate_hist bins: bin b of n covers
--            [lo + b (hi - lo) / n, lo + (b + 1) (hi - lo) / n), the last
--            bin includes hi.  [0, 1] for softmax gates; for raw weights
--            the range of the values measured, so no value falls outside.
-- The gates stored before this version were all single-level softmax gates
-- named after their owner ("t1" of MMoE, "shared" of OMoE): the defaults
-- and the UPDATE below describe them exactly.
ALTER TABLE gate ADD COLUMN level INTEGER NOT NULL DEFAULT 1;
ALTER TABLE gate ADD COLUMN owner TEXT;
ALTER TABLE gate ADD COLUMN kind TEXT NOT NULL DEFAULT 'softmax'
    CHECK (kind IN ('softmax', 'weights'));
ALTER TABLE gate ADD COLUMN hist_lo REAL NOT NULL DEFAULT 0;
ALTER TABLE gate ADD COLUMN hist_hi REAL NOT NULL DEFAULT 1;
UPDATE gate SET owner = gate WHERE owner IS NULL;

-- Routes.  The route table (trial_id, layer, src, dst, kind, value) keeps
-- its columns; their meaning for the routing families (reference:
-- mtl-models.md §12-13):
--   layer    1-based routing layer; the towers' inputs are layer L + 1;
--   src      0-based index of the lower unit (a sub-network of layer - 1;
--            0 = the model input, or MTNAS's root feature, at layer 1);
--   dst      0-based index of the upper unit (a sub-network of `layer`, or
--            a task at layer L + 1);
--   kind     SNR: 'z' (the serving estimate of the coding variable),
--            'log_alpha' (its learned location), 'p_open' (1 - Q(s < 0));
--            MTNAS: 'value' (src is in dst's derived value subset, value 1),
--            'query' (src is dst's derived query source, value 1), 'prob'
--            (the architecture probability of that choice at the end);
--   value    the weight of the connection for that kind.
-- An index for the drawings, which read one kind of one trial at a time, is
-- the primary key (trial_id, kind, layer, src, dst).

-- trial.n_params: the model's parameter count, now written for EVERY trial
-- when it is registered (0 for a data-only trial), not only when weights are
-- stored.  Stores upgraded from an older version get the counts of trials
-- whose weights were stored here, and the rest when a runner registers the
-- sweep again (`mtlab run` fills the missing counts of existing trials).
UPDATE trial SET n_params = (SELECT n FROM weights WHERE weights.trial_id = trial.id)
    WHERE n_params IS NULL AND EXISTS (SELECT 1 FROM weights WHERE weights.trial_id = trial.id);
