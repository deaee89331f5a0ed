-- mmoe-table-baselines.sql -- MMoE §6 baselines beside SB / OMoE / MMoE on
-- the synthetic correlation sweep (experiments/mmoe/baselines.ini): every
-- grid point of every family and task correlation.
--
-- A family's grid point ("setting": its hyper-parameters that the sweep
-- varies, e.g. column_hidden=64 l2_alpha=0.001) is chosen per correlation
-- by the lowest mean final validation loss (val/loss/total) over repeats, as
-- v_best_lr chooses Fig 4's lr; `chosen` = 1 marks it.  One row per
-- (correlation, family, setting) of :experiment (default mmoe-baselines):
-- finished runs n, mean final val/loss/total, and the mean, standard error
-- (sd / sqrt(n); NULL when n < 2) of :metric (default test/loss/t1) at each
-- trial's final step.
--
--   mtlab plot mmoe-table-baselines [--metric test/loss/t2]
WITH tr AS (
    SELECT t.id, t.model, t.final_step,
           (SELECT p.value FROM param p WHERE p.trial_id = t.id AND p.key = 'data.correlation')
               AS correlation,
           coalesce((SELECT group_concat(substr(p.key, 7) || '=' || p.value, ' ')
                       FROM param p
                      WHERE p.trial_id = t.id
                        AND p.key IN ('model.column_hidden', 'model.l2_alpha', 'model.rank1',
                                      'model.rank3')), '') AS setting
      FROM trial t JOIN experiment e ON e.id = t.experiment_id
     WHERE e.name = :experiment AND t.status = 'done'
), v AS (
    SELECT tr.model, tr.correlation, tr.setting,
           (SELECT m.value FROM metric m WHERE m.trial_id = tr.id AND m.step = tr.final_step
               AND m.name = 'val/loss/total') AS val,
           (SELECT m.value FROM metric m WHERE m.trial_id = tr.id AND m.step = tr.final_step
               AND m.name = :metric) AS value
      FROM tr
), cell AS (
    SELECT model, correlation, setting, count(value) AS n, avg(val) AS val_mean,
           avg(value) AS mean,
           sqrt(max(sum(value * value) - sum(value) * sum(value) / count(value), 0.0)
                / (count(value) - 1) / count(value)) AS se
      FROM v GROUP BY model, correlation, setting
), best AS (
    SELECT model, correlation, setting,
           row_number() OVER (PARTITION BY model, correlation ORDER BY val_mean, setting) AS r
      FROM cell
)
SELECT c.correlation, c.model, c.setting, c.n, c.val_mean, c.mean, c.se,
       b.r = 1 AS chosen
  FROM cell c JOIN best b ON b.model = c.model AND b.correlation = c.correlation
                         AND b.setting = c.setting
 ORDER BY c.correlation,
          CASE c.model WHEN 'shared_bottom' THEN 1 WHEN 'omoe' THEN 2 WHEN 'mmoe' THEN 3
          WHEN 'l2_constrained' THEN 4 WHEN 'cross_stitch' THEN 5
          WHEN 'tensor_factorization' THEN 6 ELSE 7 END,
          c.model, c.setting;
