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
-- The band around each line (lo, hi from :band: ci95, se, sd or none) is
-- fig 3's: see mmoe-fig3.sql.
--
--   sqlite3 results.db -cmd ".param set :experiment 'mmoe-fig4'" \
--       -cmd ".param set :metric 'test/loss/t1'" -cmd ".param set :band 'ci95'" \
--       < sql/figures/mmoe-fig4.sql
WITH t975(df, t) AS (  -- Student t, 0.975 quantile (as plot/curves.c)
    VALUES (1, 12.7062), (2, 4.3027), (3, 3.1824), (4, 2.7764), (5, 2.5706), (6, 2.4469),
           (7, 2.3646), (8, 2.3060), (9, 2.2622), (10, 2.2281), (11, 2.2010), (12, 2.1788),
           (13, 2.1604), (14, 2.1448), (15, 2.1314), (16, 2.1199), (17, 2.1098), (18, 2.1009),
           (19, 2.0930), (20, 2.0860), (21, 2.0796), (22, 2.0739), (23, 2.0687), (24, 2.0639),
           (25, 2.0595), (26, 2.0555), (27, 2.0518), (28, 2.0484), (29, 2.0452), (30, 2.0423)
), best AS (
    SELECT experiment_id, model, setting, lr
      FROM v_best_lr
     WHERE experiment = :experiment AND rank = 1
), curve AS (
    SELECT v.*,
           CASE :band WHEN 'sd' THEN v.sd_sample
                      WHEN 'se' THEN v.se
                      WHEN 'ci95' THEN v.se * coalesce(
                          (SELECT t FROM t975 WHERE df = v.n - 1),  -- above 30: Cornish-Fisher
                          1.959963984540054 + 2.372271230298562 / (v.n - 1)
                              + 2.8224986157396112 / ((v.n - 1) * (v.n - 1)))
           END AS half
      FROM v_curve v
     WHERE v.experiment_id = (SELECT id FROM experiment WHERE name = :experiment)
       AND v.name = :metric
)
SELECT c.correlation, c.model, c.lr, c.step, c.n, c.mean, c.sd, c.min, c.max,
       c.sd_sample, c.se, c.mean - c.half AS lo, c.mean + c.half AS hi
  FROM curve c
  JOIN best b ON b.experiment_id = c.experiment_id AND b.model = c.model
             AND b.setting = c.setting AND b.lr = c.lr
 ORDER BY c.correlation,
          CASE c.model WHEN 'shared_bottom' THEN 1 WHEN 'omoe' THEN 2 WHEN 'mmoe' THEN 3 ELSE 4 END,
          c.model, c.lr, c.step;
