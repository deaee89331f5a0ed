-- 009-spec-history.sql -- schema version 9: every spec text an experiment
-- had, which spec added each trial, and the draw rule of its random search.
-- (008 is another change's number; migrations apply every file above a
-- store's version, so none depends on another being there.)
--
-- spec: one row per spec text an experiment was run with, in the order
-- registered (id): the first run's, then one per `mtlab run --replace-spec`
-- with a changed text.  text is experiment.spec at that time (the sweep file,
-- then the "; mtlab run --scale NAME" and "; mtlab run override: KEY=VALUE"
-- lines); overrides the command-line overrides alone, one per line ('' none);
-- draws the draw rule of its distributions ('paired' or 'independent',
-- experiment.draws); created when it was registered; code_version the mtlab
-- that registered it.  experiment.spec stays the latest text.
--
-- trial.spec_id: the spec whose run added the trial.  NULL for a trial
-- registered before schema version 9 (only the last text was kept then; the
-- spec row made here for each existing experiment is that last text).
--
-- experiment.draws: how the experiment's distributions are drawn.  Every
-- experiment stored before version 9 drew independently per grid point and
-- model, and keeps that rule (so its file keeps expanding to its trials);
-- new experiments default to 'paired' ([experiment] draws).
ALTER TABLE experiment ADD COLUMN draws TEXT NOT NULL DEFAULT 'paired';
UPDATE experiment SET draws = 'independent';

CREATE TABLE spec (
    id            INTEGER PRIMARY KEY,
    experiment_id INTEGER NOT NULL REFERENCES experiment (id),
    text          TEXT NOT NULL,
    overrides     TEXT NOT NULL DEFAULT '',
    draws         TEXT NOT NULL DEFAULT 'paired',
    created       TEXT,
    code_version  TEXT
);
CREATE INDEX spec_experiment ON spec (experiment_id);
INSERT INTO spec (experiment_id, text, overrides, draws, created, code_version)
SELECT id, spec, '', 'independent', updated, code_version FROM experiment ORDER BY id;

ALTER TABLE trial ADD COLUMN spec_id INTEGER REFERENCES spec (id);
