-- adatt-table-ablation.sql -- AdaTT Table 6: the NativeExpertLF ablation,
-- each task's change when native_lf = off (the gate alone) against on.
--
-- Over the finished trials of :experiment (default adatt-ablation), each
-- trial's final test NE (binary task: test/ne/tK) or MSE (regression task:
-- test/loss/tK) is paired with the trial of model.native_lf = on on the same dataset
-- (same data_seed), d = 100 (v - v_ref) / v_ref, in % (lower is better).  One
-- row per (native_lf, task): the pairs n, the mean NE / MSE, the mean of d and its
-- standard error sd(d) / sqrt(n) (NULL when n < 2; d = 0 on the reference).
--
--   mtlab plot adatt-table-ablation
WITH tr AS (
    SELECT t.id, t.data_seed, t.final_step,
           (SELECT p.value FROM param p WHERE p.trial_id = t.id AND p.key = 'model.native_lf') AS native_lf
      FROM trial t JOIN experiment e ON e.id = t.experiment_id
     WHERE e.name = :experiment AND t.status = 'done'
), v AS (
    SELECT tr.id, tr.native_lf, tr.data_seed, CAST(substr(m.name, 12) AS INTEGER) AS task,
           ne.value IS NOT NULL AS is_binary, coalesce(ne.value, m.value) AS value
      FROM tr
      JOIN metric m ON m.trial_id = tr.id AND m.step = tr.final_step
                   AND m.name GLOB 'test/loss/t[0-9]*'
      LEFT JOIN metric ne ON ne.trial_id = tr.id AND ne.step = tr.final_step
                         AND ne.name = 'test/ne/' || substr(m.name, 11)
), d AS (
    SELECT v.native_lf, v.task, v.is_binary, v.value, 100.0 * (v.value - r.value) / r.value AS diff
      FROM v JOIN v r ON r.data_seed = v.data_seed AND r.task = v.task AND r.native_lf = 'on'
)
SELECT native_lf, task, CASE WHEN max(is_binary) THEN 'NE' ELSE 'MSE' END AS measure,
       count(*) AS n, avg(value) AS mean_value, avg(diff) AS diff_pct,
       sqrt(max(sum(diff * diff) - sum(diff) * sum(diff) / count(*), 0.0)
            / (count(*) - 1) / count(*)) AS se_pct
  FROM d
 GROUP BY native_lf, task
 ORDER BY native_lf <> 'on', CAST(native_lf AS REAL), native_lf, task;
