-- mmoe-table-fig4.sql -- the numbers behind MMoE Fig 4: per task
-- correlation and model, the learning rate chosen by validation loss and
-- the final losses at it.
--
-- For experiment :experiment (default mmoe-fig4), one row per model and
-- setting (the config without train.lr; here the correlation): the lr with
-- the lowest mean final val/loss/total over its n finished repeats (v_best_lr
-- rank 1, the lr the mmoe-fig4 figure draws; a tie gives two rows), that
-- mean (val_total), the mean final test/loss/total (test_total), and over
-- the same runs the mean, sample sd (n - 1), min and max of the final
-- :metric (default test/loss/t1).  Every lr's numbers:
--   SELECT * FROM v_best_lr WHERE experiment = 'mmoe-fig4' ORDER BY setting, model, rank
--
--   sqlite3 results.db -cmd ".param set :experiment 'mmoe-fig4'" \
--       -cmd ".param set :metric 'test/loss/t1'" < sql/figures/mmoe-table-fig4.sql
WITH final AS (
    SELECT v.model, v.correlation, v.lr, v.value, s.setting
      FROM v_final v
      JOIN v_setting s ON s.trial_id = v.trial_id
     WHERE v.experiment = :experiment AND v.name = :metric AND v.value IS NOT NULL
), metric AS (
    SELECT model, setting, lr, min(correlation) AS correlation,
           avg(value) AS mean,
           sqrt(max(sum(value * value) - sum(value) * sum(value) / count(*), 0.0)
                / (count(*) - 1)) AS sd,
           min(value) AS min, max(value) AS max
      FROM final
     GROUP BY model, setting, lr
)
SELECT m.correlation, b.model, b.lr, b.n,
       b.val_loss AS val_total, b.test_loss AS test_total,
       m.mean, m.sd, m.min, m.max
  FROM v_best_lr b
  JOIN metric m ON m.model = b.model AND m.setting = b.setting AND m.lr = b.lr
 WHERE b.experiment = :experiment AND b.rank = 1
 ORDER BY m.correlation,
          CASE b.model WHEN 'shared_bottom' THEN 1 WHEN 'omoe' THEN 2 WHEN 'mmoe' THEN 3 ELSE 4 END,
          b.model, b.lr;
