-- mmoe-gates.sql -- gate distributions (an analogue of MTNAS Fig 6 /
-- MMoE's gates): how much weight each gate gives each expert, per model
-- and task correlation, averaged over repeats.
--
-- Experts are interchangeable: which expert index a task ends up using
-- depends on the initialisation, so the mean weight of "expert 3" over
-- repeats washes out to about 1/n.  We therefore RANK the experts within
-- each trial by the weight the trial's reference gate gives them (rank 1:
-- the expert it uses most; the reference gate is the alphabetically first
-- one: t1 for MMoE, shared for OMoE) and average over repeats per rank.
-- Every gate of the trial is shown on that same ranking, so for MMoE the
-- t2 bars say whether task 2 uses task 1's experts (related tasks) or
-- others (less related ones) -- ranking each gate by its own weights would
-- hide exactly that.
--
-- One row per (model, correlation, gate, rank): over the n finished trials
-- of experiment :experiment (default mmoe-gates), the mean and sample sd
-- (n - 1; NULL when n < 2) of the gate's mean weight (on the test set) for
-- the expert of that rank.  A gate's means sum to 1 over the ranks.
--
--   sqlite3 results.db -cmd ".param set :experiment 'mmoe-gates'" < sql/figures/mmoe-gates.sql
WITH weight AS (
    SELECT t.id AS trial_id, t.model, c.value AS correlation, g.gate, g.expert, g.mean AS w
      FROM trial t
      JOIN experiment e ON e.id = t.experiment_id
      JOIN param c ON c.trial_id = t.id AND c.key = 'data.correlation'
      JOIN gate g ON g.trial_id = t.id
     WHERE e.name = :experiment AND t.status = 'done'
), reference AS (
    SELECT trial_id, min(gate) AS gate FROM weight GROUP BY trial_id
), ranked AS (
    SELECT w.trial_id, w.expert,
           row_number() OVER (PARTITION BY w.trial_id ORDER BY w.w DESC, w.expert) AS rank
      FROM weight w
      JOIN reference r ON r.trial_id = w.trial_id AND r.gate = w.gate
)
SELECT w.model, w.correlation, w.gate, r.rank,
       count(w.w) AS n,
       avg(w.w) AS mean,
       sqrt(max(sum(w.w * w.w) - sum(w.w) * sum(w.w) / count(w.w), 0.0) / (count(w.w) - 1)) AS sd
  FROM weight w
  JOIN ranked r ON r.trial_id = w.trial_id AND r.expert = w.expert
 GROUP BY w.model, w.correlation, w.gate, r.rank
 ORDER BY CASE w.model WHEN 'shared_bottom' THEN 1 WHEN 'omoe' THEN 2 WHEN 'mmoe' THEN 3 ELSE 4 END,
          w.model, w.correlation, w.gate, r.rank;
