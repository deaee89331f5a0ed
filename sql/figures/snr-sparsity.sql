-- snr-sparsity.sql -- sparsity of the learned routes against the L0 weight λ
-- (issue 13, item 3: the expected L0 and the number of open connections
-- should fall as λ grows; at λ = 0 nothing pushes them down).
--
-- One row per (model, measure, λ) of experiment :experiment (default
-- snr-lambda), over its n done trials: the mean and sample sd (n - 1; NULL
-- when n < 2) of
--   'expected L0'       Σ P(z != 0) over the connections ('p_open' routes),
--   'open connections'  the connections with ẑ > 0 ('z' routes),
-- each as a FRACTION of the trial's connections (conn: their count), at the
-- end of training.  λ is model.l0_lambda; x is λ, or for λ = 0 a tenth of the
-- smallest λ > 0 of the experiment (a log axis has no 0; the figure says so).
--
--   sqlite3 results.db -cmd ".param set :experiment 'snr-lambda'" < sql/figures/snr-sparsity.sql
WITH tr AS (
    SELECT t.id, t.model,
           (SELECT p.value FROM param p WHERE p.trial_id = t.id AND p.key = 'model.l0_lambda')
               AS lambda
      FROM trial t
      JOIN experiment e ON e.id = t.experiment_id
     WHERE e.name = :experiment AND t.status = 'done'
), per_trial AS (
    SELECT tr.id, tr.model, tr.lambda, 'expected L0' AS measure,
           sum(r.value) AS v, count(*) AS conn
      FROM tr JOIN route r ON r.trial_id = tr.id AND r.kind = 'p_open'
     GROUP BY tr.id
    UNION ALL
    SELECT tr.id, tr.model, tr.lambda, 'open connections',
           sum(r.value > 0), count(*)
      FROM tr JOIN route r ON r.trial_id = tr.id AND r.kind = 'z'
     GROUP BY tr.id
), frac AS (
    SELECT model, lambda, measure, 1.0 * v / conn AS f, conn FROM per_trial
)
SELECT model, measure, lambda,
       CASE WHEN lambda > 0 THEN lambda
            ELSE (SELECT min(lambda) FROM tr WHERE lambda > 0) / 10.0 END AS x,
       count(*) AS n, max(conn) AS conn,
       avg(f) AS mean,
       CASE WHEN count(*) > 1
            THEN sqrt(max(sum(f * f) - sum(f) * sum(f) / count(*), 0.0) / (count(*) - 1)) END AS sd
  FROM frac
 GROUP BY model, measure, lambda
 ORDER BY model, measure, lambda;
