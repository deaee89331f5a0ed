-- mmoe-gates-hist.sql -- how peaked the gates are: the distribution of the
-- weights a gate gives, pooled over its experts, the test examples and the
-- repeats, per model and task correlation.
--
-- The store keeps, per trial, gate and expert, a histogram of the expert's
-- weight over the test examples (gate_hist: equal bins on [0, 1], every bin
-- stored).  A gate that routes each example to one expert puts its mass
-- near 0 and 1; a uniform gate near 1/n.
--
-- One row per (model, correlation, gate, bin) of experiment :experiment
-- (default mmoe-gates): the bin's edges lo and hi, the pooled count and its
-- fraction of all (example, expert) weights of that model, correlation and
-- gate (the fractions of one gate sum to 1); trials = finished trials.
--
--   sqlite3 results.db -cmd ".param set :experiment 'mmoe-gates'" < sql/figures/mmoe-gates-hist.sql
WITH hist AS (
    SELECT t.id AS trial_id, t.model, c.value AS correlation, h.gate, h.bin, h.count
      FROM trial t
      JOIN experiment e ON e.id = t.experiment_id
      JOIN param c ON c.trial_id = t.id AND c.key = 'data.correlation'
      JOIN gate_hist h ON h.trial_id = t.id
     WHERE e.name = :experiment AND t.status = 'done'
), pooled AS (
    SELECT model, correlation, gate, bin, sum(count) AS count, count(DISTINCT trial_id) AS trials
      FROM hist
     GROUP BY model, correlation, gate, bin
), bins AS (
    SELECT max(bin) + 1 AS n FROM hist
)
SELECT p.model, p.correlation, p.gate, p.bin,
       1.0 * p.bin / b.n AS lo,
       1.0 * (p.bin + 1) / b.n AS hi,
       p.count,
       1.0 * p.count / sum(p.count) OVER (PARTITION BY p.model, p.correlation, p.gate) AS fraction,
       p.trials
  FROM pooled p
 CROSS JOIN bins b
 ORDER BY CASE p.model WHEN 'shared_bottom' THEN 1 WHEN 'omoe' THEN 2 WHEN 'mmoe' THEN 3 ELSE 4 END,
          p.model, p.correlation, p.gate, p.bin;
