-- mmoe-table.sql -- the final loss over repeated runs, per model and task
-- correlation (the numbers behind MMoE Fig 5; with :experiment mmoe-fig4 and
-- several lrs, one row per lr).
--
-- One row per (model, correlation, lr) of experiment :experiment (default
-- mmoe-fig5): the finished runs n, the failed (diverged) ones, and over the
-- finished runs the mean, sample sd (n - 1), min, median and max of metric
-- :metric (default test/loss/t1) at each trial's final step.
--
--   sqlite3 results.db -cmd ".param set :experiment 'mmoe-fig5'" \
--       -cmd ".param set :metric 'test/loss/t1'" < sql/figures/mmoe-table.sql
WITH final AS (
    SELECT model, correlation, lr, value,
           row_number() OVER (PARTITION BY model, correlation, lr ORDER BY value) AS i,
           count(*) OVER (PARTITION BY model, correlation, lr) AS cnt
      FROM v_final
     WHERE experiment = :experiment AND name = :metric AND value IS NOT NULL
), failed AS (
    SELECT t.model,
           (SELECT value FROM param p WHERE p.trial_id = t.id AND p.key = 'data.correlation')
               AS correlation,
           (SELECT value FROM param p WHERE p.trial_id = t.id AND p.key = 'train.lr') AS lr,
           count(*) AS failed
      FROM trial t
      JOIN experiment e ON e.id = t.experiment_id
     WHERE e.name = :experiment AND t.status = 'failed'
     GROUP BY 1, 2, 3
)
SELECT f.model, f.correlation, f.lr,
       count(*) AS n,
       coalesce(x.failed, 0) AS failed,
       avg(f.value) AS mean,
       sqrt(max(sum(f.value * f.value) - sum(f.value) * sum(f.value) / count(*), 0.0)
            / (count(*) - 1)) AS sd,
       min(f.value) AS min,
       avg(CASE WHEN f.i IN ((f.cnt + 1) / 2, (f.cnt + 2) / 2) THEN f.value END) AS median,
       max(f.value) AS max
  FROM final f
  LEFT JOIN failed x ON x.model = f.model AND x.correlation IS f.correlation AND x.lr IS f.lr
 GROUP BY f.model, f.correlation, f.lr
 ORDER BY f.correlation,
          CASE f.model WHEN 'shared_bottom' THEN 1 WHEN 'omoe' THEN 2 WHEN 'mmoe' THEN 3 ELSE 4 END,
          f.model, f.lr;
