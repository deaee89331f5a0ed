-- mmoe-fig4.sql -- MMoE Fig 4: Shared-Bottom, OMoE and MMoE at each task
-- correlation, each model at ITS best learning rate.
--
-- The paper grid-searches the lr in [0.0001, 0.001, 0.01] for every
-- model-correlation pair.  We pick, per model and setting (the config
-- without train.lr: here the correlation), the lr with the lowest mean
-- final validation loss val/loss/total (v_best_lr, rank 1; a tie keeps
-- both) and draw that lr's test curve.
--
-- One row per line point: correlation, model, the chosen lr, the
-- evaluation step, and over the n finished repeats at that lr the mean,
-- population sd, min and max of metric :metric (default test/loss/t1) from
-- v_curve.  Experiment :experiment (default mmoe-fig4).
--
--   sqlite3 results.db -cmd ".param set :experiment 'mmoe-fig4'" \
--       -cmd ".param set :metric 'test/loss/t1'" < sql/figures/mmoe-fig4.sql
WITH best AS (
    SELECT experiment_id, model, setting, lr
      FROM v_best_lr
     WHERE experiment = :experiment AND rank = 1
), curve AS (
    SELECT v.*
      FROM v_curve v
     WHERE v.experiment_id = (SELECT id FROM experiment WHERE name = :experiment)
       AND v.name = :metric
)
SELECT c.correlation, c.model, c.lr, c.step, c.n, c.mean, c.sd, c.min, c.max
  FROM curve c
  JOIN best b ON b.experiment_id = c.experiment_id AND b.model = c.model
             AND b.setting = c.setting AND b.lr = c.lr
 ORDER BY c.correlation,
          CASE c.model WHEN 'shared_bottom' THEN 1 WHEN 'omoe' THEN 2 WHEN 'mmoe' THEN 3 ELSE 4 END,
          c.model, c.lr, c.step;
