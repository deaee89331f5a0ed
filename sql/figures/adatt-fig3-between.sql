-- adatt-fig3-between.sql -- AdaTT Fig 3 per between-group correlation:
-- AdaTT-sp's effective expert weights per fusion level, tasks x experts, for
-- each between-group correlation of :experiment (default adatt-between).
--
-- As adatt-fig3.sql (stored gate records only: softmax + native weight, the
-- test-set mean per trial, averaged over repeats).  With the groups
-- unrelated (between 0) a task should draw on its own group's experts (the
-- 2 x 2 blocks of tasks 1-2 and 3-4); as between grows the blocks should fade.
-- One row per (between, level, task, expert): repeats n, mean weight, sd.
-- Panels: between x level.
--
--   mtlab plot adatt-fig3-between
SELECT p.value AS "between", w.level, CAST(substr(w.module, 2) AS INTEGER) AS task,
       w.expert + 1 AS expert, count(*) AS n, avg(w.mean) AS weight,
       sqrt(max(sum(w.mean * w.mean) - sum(w.mean) * sum(w.mean) / count(*), 0.0)
            / (count(*) - 1)) AS sd
  FROM v_gate_weights w
  JOIN trial t ON t.id = w.trial_id AND t.status = 'done'
  JOIN param p ON p.trial_id = w.trial_id AND p.key = 'data.between'
 WHERE w.experiment = :experiment AND w.model = 'adatt_sp' AND w.module GLOB 't[0-9]*'
 GROUP BY p.value, w.level, task, expert
 ORDER BY p.value, w.level, task, expert;
