-- snr-l0-steps.sql -- the expected L0 during training, per λ (issue 13: "at
-- λ large enough every route closes, at λ = 0 the expected L0 does not
-- fall"): the routes at every evaluation (route_step, migration 008).
--
-- One row per (model, λ, step) of experiment :experiment (default
-- snr-lambda), over the n done trials: the mean and sample sd (n - 1) of
-- Σ P(z != 0) / connections ('p_open' routes) at that evaluation.  At the
-- reference initialisation (log α ~ N(0, 0.01²)) every P(z != 0) is
-- σ(-β log(-γ/ζ)) = 0.832, the level the λ = 0 curves should keep.
--
--   sqlite3 results.db -cmd ".param set :experiment 'snr-lambda'" < sql/figures/snr-l0-steps.sql
WITH tr AS (
    SELECT t.id, t.model,
           (SELECT p.value FROM param p WHERE p.trial_id = t.id AND p.key = 'model.l0_lambda')
               AS lambda
      FROM trial t
      JOIN experiment e ON e.id = t.experiment_id
     WHERE e.name = :experiment AND t.status = 'done'
), per_step AS (
    SELECT tr.model, tr.lambda, r.step, 1.0 * sum(r.value) / count(*) AS f
      FROM tr JOIN route_step r ON r.trial_id = tr.id AND r.kind = 'p_open'
     GROUP BY tr.id, r.step
)
SELECT model, lambda, step,
       count(*) AS n,
       avg(f) AS mean,
       CASE WHEN count(*) > 1
            THEN sqrt(max(sum(f * f) - sum(f) * sum(f) / count(*), 0.0) / (count(*) - 1)) END AS sd
  FROM per_step
 GROUP BY model, lambda, step
 ORDER BY model, lambda, step;
