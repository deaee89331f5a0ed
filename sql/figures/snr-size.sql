-- snr-size.sql -- test loss against the served model's size (the SNR paper's
-- Figs 3-4 on synthetic data): do the baselines saturate while SNR keeps
-- improving, and does a sparse SNR beat a dense one at equal serving size?
--
-- One row per (model, λ, droprate, config) of experiment :experiment (default
-- snr-size), over its n done trials: the mean serving parameter count
-- (metric model/serving_params at the final step: connections with ẑ = 0
-- removed; a family without routes serves all its weights, trial.n_params),
-- and the mean and sample sd (n - 1) of the final :metric (default
-- test/loss/total).  λ is model.l0_lambda and droprate model.droprate_init
-- (the initial P(z = 0) setting; NULL for the baselines).  Ordered by
-- serving size within each (model, λ, droprate), so a line joins a model's
-- sizes.
--
--   sqlite3 results.db -cmd ".param set :experiment 'snr-size'" \
--       -cmd ".param set :metric 'test/loss/total'" < sql/figures/snr-size.sql
WITH tr AS (
    SELECT t.id, t.model, t.config, t.final_step,
           (SELECT p.value FROM param p WHERE p.trial_id = t.id AND p.key = 'model.l0_lambda')
               AS lambda,
           (SELECT p.value FROM param p WHERE p.trial_id = t.id AND p.key = 'model.droprate_init')
               AS droprate,
           coalesce((SELECT m.value FROM metric m
                      WHERE m.trial_id = t.id AND m.name = 'model/serving_params'
                        AND m.step = t.final_step), t.n_params) AS serving
      FROM trial t
      JOIN experiment e ON e.id = t.experiment_id
     WHERE e.name = :experiment AND t.status = 'done'
), loss AS (
    SELECT tr.model, tr.lambda, tr.droprate, tr.config, tr.serving, m.value AS v
      FROM tr JOIN metric m ON m.trial_id = tr.id AND m.name = :metric AND m.step = tr.final_step
     WHERE m.value IS NOT NULL
)
SELECT model, lambda, droprate, config,
       count(*) AS n,
       avg(serving) AS serving,
       avg(v) AS mean,
       CASE WHEN count(*) > 1
            THEN sqrt(max(sum(v * v) - sum(v) * sum(v) / count(*), 0.0) / (count(*) - 1)) END AS sd
  FROM loss
 GROUP BY model, lambda, droprate, config
 ORDER BY model, lambda, droprate, avg(serving), config;
