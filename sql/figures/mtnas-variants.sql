-- mtnas-variants.sql -- MTNAS Table 5 on synthetic data: the full search
-- (gate softmax, query search) against w/o QS (query root) and the Baseline
-- (gate mean: no query is read, so its two query settings are one model).
--
-- One row per (correlation, variant) of the finished mtnas trials of
-- experiment :experiment (default mtnas-variants): n, the mean, sample sd,
-- min and max of metric :metric (default test/loss/total) at each trial's
-- final step, and the mean serving size (the derived route's parameters).
--
--   sqlite3 results.db -cmd ".param set :experiment 'mtnas-variants'" \
--       -cmd ".param set :metric 'test/loss/total'" < sql/figures/mtnas-variants.sql
WITH trials AS (
    SELECT t.id AS trial_id,
           max(CASE WHEN p.key = 'data.correlation' THEN p.value END) AS correlation,
           max(CASE WHEN p.key = 'model.gate' THEN p.value END) AS gate,
           max(CASE WHEN p.key = 'model.query' THEN p.value END) AS query
      FROM trial t
      JOIN experiment e ON e.id = t.experiment_id
      JOIN param p ON p.trial_id = t.id
     WHERE e.name = :experiment AND t.model = 'mtnas' AND t.status = 'done'
     GROUP BY t.id
), final AS (
    SELECT x.correlation,
           CASE WHEN x.gate = 'mean' THEN 'Baseline (gate mean)'
                WHEN x.query = 'root' THEN 'w/o QS (query root)'
                ELSE 'MTNAS (full)' END AS variant,
           (SELECT m.value FROM metric m WHERE m.trial_id = x.trial_id AND m.name = :metric
             ORDER BY m.step DESC LIMIT 1) AS value,
           (SELECT m.value FROM metric m WHERE m.trial_id = x.trial_id
               AND m.name = 'model/serving_params' ORDER BY m.step DESC LIMIT 1) AS serving
      FROM trials x
)
SELECT correlation, variant, count(value) AS n,
       avg(value) AS mean,
       sqrt(max(sum(value * value) - sum(value) * sum(value) / count(value), 0.0)
            / max(count(value) - 1, 1)) AS sd,
       min(value) AS min, max(value) AS max,
       CAST(round(avg(serving)) AS INTEGER) AS serving_params
  FROM final
 GROUP BY correlation, variant
 ORDER BY correlation, mean;
