-- snr-utilisation.sql -- sub-network utilisation per task (the SNR paper's
-- Fig 5): the fraction of the bottom sub-networks each task's tower reaches
-- through open connections (v_route_utilisation, sql/routes/recovery.sql;
-- for MMoE-like gates the mean gate mass per expert, which is 1/experts).
--
-- One row per (model, λ, task) of experiment :experiment (default
-- snr-lambda): over the n done trials, the mean and sample sd (n - 1) of the
-- task's utilisation.  λ is model.l0_lambda (NULL without one).
--
--   sqlite3 results.db -cmd ".param set :experiment 'snr-lambda'" < sql/figures/snr-utilisation.sql
WITH u AS (
    SELECT t.model,
           (SELECT p.value FROM param p WHERE p.trial_id = t.id AND p.key = 'model.l0_lambda')
               AS lambda,
           v.task, v.utilisation AS f
      FROM trial t
      JOIN experiment e ON e.id = t.experiment_id
      JOIN v_route_utilisation v ON v.trial_id = t.id
     WHERE e.name = :experiment AND t.status = 'done'
)
SELECT model, lambda, task,
       count(*) AS n,
       avg(f) AS mean,
       CASE WHEN count(*) > 1
            THEN sqrt(max(sum(f * f) - sum(f) * sum(f) / count(*), 0.0) / (count(*) - 1)) END AS sd
  FROM u
 GROUP BY model, lambda, task
 ORDER BY lambda, model, task;
