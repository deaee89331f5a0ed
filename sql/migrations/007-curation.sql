-- 007-curation.sql -- schema version 7: tags and notes (`mtlab tag`,
-- `mtlab note`).  (006 is another change's number; migrations apply every
-- file above a store's version, so none depends on another being there.)
--
-- A tag or a note belongs to an experiment, and to one of its trials when
-- trial_id is set (NULL: to the experiment itself).  Tags are words
-- ([A-Za-z0-9._:+-]+), once each per target; notes are free text, as many
-- as wanted, kept in the order written (id).  `mtlab rm` deletes them with
-- what they belong to; the runs table (`mtlab trials`) shows a trial's tags.
CREATE TABLE tag (
    experiment_id INTEGER NOT NULL REFERENCES experiment (id),
    trial_id      INTEGER REFERENCES trial (id),
    tag           TEXT NOT NULL,
    created       TEXT
);
CREATE UNIQUE INDEX tag_target ON tag (experiment_id, ifnull(trial_id, 0), tag);
CREATE INDEX tag_trial ON tag (trial_id);

CREATE TABLE note (
    id            INTEGER PRIMARY KEY,
    experiment_id INTEGER NOT NULL REFERENCES experiment (id),
    trial_id      INTEGER REFERENCES trial (id),
    text          TEXT NOT NULL,
    created       TEXT
);
CREATE INDEX note_trial ON note (trial_id);
CREATE INDEX note_experiment ON note (experiment_id);
