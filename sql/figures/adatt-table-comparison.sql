-- adatt-table-comparison.sql -- AdaTT Tables 1-3: each family's difference
-- from Shared-Bottom per task, as the paper reports it (NE diff for binary
-- tasks, MSE diff for the regression task, in %; lower is better).
--
-- Over the finished trials of :experiment (default adatt-comparison), each
-- trial's final test NE (binary task: test/ne/tK) or MSE (test/loss/tK) is
-- paired with Shared-Bottom's on the same dataset (same data_seed: every
-- family of a repeat sees the same data), d = 100 (v - v_SB) / v_SB.  One row
-- per (family, task): the pairs n, the family's mean NE / MSE, the mean of d
-- and its standard error sd(d) / sqrt(n) (NULL when n < 2).
--
--   mtlab plot adatt-table-comparison [--experiment adatt-between]
WITH tr AS (
    SELECT t.id, t.model, t.data_seed, t.final_step
      FROM trial t JOIN experiment e ON e.id = t.experiment_id
     WHERE e.name = :experiment AND t.status = 'done'
), v AS (
    SELECT tr.id, tr.model, tr.data_seed, CAST(substr(m.name, 12) AS INTEGER) AS task,
           ne.value IS NOT NULL AS is_binary, coalesce(ne.value, m.value) AS value
      FROM tr
      JOIN metric m ON m.trial_id = tr.id AND m.step = tr.final_step
                   AND m.name GLOB 'test/loss/t[0-9]*'
      LEFT JOIN metric ne ON ne.trial_id = tr.id AND ne.step = tr.final_step
                         AND ne.name = 'test/ne/' || substr(m.name, 11)
), d AS (
    SELECT v.model, v.task, v.is_binary, v.value,
           100.0 * (v.value - s.value) / s.value AS diff
      FROM v JOIN v s ON s.data_seed = v.data_seed AND s.task = v.task
                     AND s.model = 'shared_bottom'
     WHERE v.model <> 'shared_bottom'
)
SELECT model, task, CASE WHEN max(is_binary) THEN 'NE' ELSE 'MSE' END AS measure,
       count(*) AS n, avg(value) AS mean_value, avg(diff) AS diff_pct,
       sqrt(max(sum(diff * diff) - sum(diff) * sum(diff) / count(*), 0.0)
            / (count(*) - 1) / count(*)) AS se_pct
  FROM d
 GROUP BY model, task
 ORDER BY CASE model WHEN 'mmoe' THEN 1 WHEN 'ml_mmoe' THEN 2 WHEN 'ple' THEN 3
          WHEN 'adatt' THEN 4 WHEN 'cross_stitch' THEN 5 WHEN 'adatt_sp' THEN 6 ELSE 7 END,
          model, task;
