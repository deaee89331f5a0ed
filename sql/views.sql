-- views.sql -- the views of the mtlab run store (sql/schema.sql holds the
-- tables).  Views hold no data: mtlab creates them with a new store and
-- recreates them all when it upgrades an older one, so they always match
-- the mtlab that opened the store last for writing.

-- Final results: one row per finished (done) trial and metric, at the trial's
-- final step, with the most used params as columns.  Any other param:
--   SELECT f.*, p.value AS experts FROM v_final f
--   JOIN param p ON p.trial_id = f.trial_id AND p.key = 'model.experts'
CREATE VIEW v_final AS
SELECT t.id AS trial_id,
       e.name AS experiment,
       t.experiment_id,
       t.model,
       t.repeat,
       t.config,
       m.name,
       m.step,
       m.value,
       (SELECT p.value FROM param p
         WHERE p.trial_id = t.id AND p.key = 'data.correlation') AS correlation,
       (SELECT p.value FROM param p
         WHERE p.trial_id = t.id AND p.key = 'train.lr') AS lr
  FROM trial t
  JOIN experiment e ON e.id = t.experiment_id
  JOIN metric m ON m.trial_id = t.id AND m.step = t.final_step
 WHERE t.status = 'done';

-- Each trial's setting: its config without the train.lr key, i.e. what the
-- trials of one experiment point at different learning rates share (used to
-- compare learning rates: v_curve, v_best_lr).
CREATE VIEW v_setting AS
SELECT t.id AS trial_id,
       CASE WHEN t.at = 0 THEN t.config
            WHEN instr(substr(t.config, t.at), ';') = 0  -- train.lr is last
            THEN substr(t.config, 1, max(t.at - 2, 0))
            ELSE substr(t.config, 1, t.at - 1) ||
                 substr(t.config, t.at + instr(substr(t.config, t.at), ';'))
       END AS setting
  FROM (SELECT id, config, instr(config, 'train.lr=') AS at FROM trial) t;

-- Curves averaged over repeats: per experiment, model, config, metric and
-- step, over the done trials: n values, mean, population standard deviation
-- (sd, divides by n: what the paper figures draw), min and max, and the
-- sample standard deviation (sd_sample, divides by n - 1; NULL for n < 2)
-- with the standard error of the mean (se = sd_sample / sqrt(n)) (setting:
-- the config without train.lr, see v_setting).
CREATE VIEW v_curve AS
SELECT e.name AS experiment,
       t.experiment_id,
       t.model,
       t.config,
       s.setting,
       (SELECT p.value FROM param p
         WHERE p.trial_id = t.id AND p.key = 'data.correlation') AS correlation,
       (SELECT p.value FROM param p
         WHERE p.trial_id = t.id AND p.key = 'train.lr') AS lr,
       m.name,
       m.step,
       count(m.value) AS n,
       avg(m.value) AS mean,
       sqrt(max(avg(m.value * m.value) - avg(m.value) * avg(m.value), 0.0)) AS sd,
       min(m.value) AS min,
       max(m.value) AS max,
       CASE WHEN count(m.value) > 1
            THEN sqrt(max(avg(m.value * m.value) - avg(m.value) * avg(m.value), 0.0)
                      * count(m.value) / (count(m.value) - 1)) END AS sd_sample,
       CASE WHEN count(m.value) > 1
            THEN sqrt(max(avg(m.value * m.value) - avg(m.value) * avg(m.value), 0.0)
                      / (count(m.value) - 1)) END AS se
  FROM metric m
  JOIN trial t ON t.id = m.trial_id
  JOIN experiment e ON e.id = t.experiment_id
  JOIN v_setting s ON s.trial_id = t.id
 WHERE t.status = 'done'
 GROUP BY t.experiment_id, t.model, t.config, m.name, m.step;

-- Learning rates compared by validation loss: per experiment, model and
-- setting (the config without its train.lr key), the mean final
-- val/loss/total of each lr over its done repeats (n), ranked (rank 1: the
-- lowest validation loss), with the mean final test/loss/total at that lr;
-- setting_id numbers the settings of an experiment (1, 2, ... in setting
-- order), so rank-1 rows of different settings are told apart at a glance;
-- data_setting_id numbers their data and train part (the config before its
-- model keys), the same for every model trained at that setting, so the
-- families' rows pair up (with paired random draws, at the same lrs).
--   SELECT * FROM v_best_lr WHERE rank = 1
CREATE VIEW v_best_lr AS
WITH final AS (
    SELECT t.id, t.experiment_id, t.model, s.setting, t.final_step
      FROM trial t
      JOIN v_setting s ON s.trial_id = t.id
     WHERE t.status = 'done'
), by_lr AS (
    SELECT f.experiment_id,
           f.model,
           f.setting,
           (SELECT p.value FROM param p
             WHERE p.trial_id = f.id AND p.key = 'train.lr') AS lr,
           count(v.value) AS n,
           avg(v.value) AS val_loss,
           avg((SELECT m.value FROM metric m
                 WHERE m.trial_id = f.id AND m.name = 'test/loss/total'
                   AND m.step = f.final_step)) AS test_loss
      FROM final f
      JOIN metric v ON v.trial_id = f.id AND v.name = 'val/loss/total'
                   AND v.step = f.final_step
     GROUP BY f.experiment_id, f.model, f.setting, lr
)
SELECT e.name AS experiment,
       b.experiment_id,
       b.model,
       b.setting,
       b.lr,
       b.n,
       b.val_loss,
       b.test_loss,
       rank() OVER (PARTITION BY b.experiment_id, b.model, b.setting
                    ORDER BY b.val_loss) AS rank,
       dense_rank() OVER (PARTITION BY b.experiment_id ORDER BY b.setting) AS setting_id,
       dense_rank() OVER (PARTITION BY b.experiment_id
                          ORDER BY CASE WHEN instr(b.setting, ';model.name=') > 0
                                        THEN substr(b.setting, 1,
                                                    instr(b.setting, ';model.name=') - 1)
                                        ELSE b.setting END) AS data_setting_id
  FROM by_lr b
  JOIN experiment e ON e.id = b.experiment_id;

-- AdaTT's effective fusion weights (softmax plus native weight; AdaTT Fig 3),
-- from the gates of kind 'weights' ("l<level>/<module>/weights"): one row per
-- trial, level, module (t1, t2, ..., shared) and expert (0-based: task 1's
-- experts first, then task 2's, ..., the shared ones last), with the mean and
-- sd over the test set of the weight the module's fusion unit gives that
-- expert.  A trial's Fig 3 heat map of level L is its rows with level = L,
-- module x expert.  Averaged over the repeats of an experiment:
--   SELECT model, level, module, expert, avg(mean) AS weight, count(*) AS n
--     FROM v_gate_weights WHERE experiment = 'NAME'
--    GROUP BY model, level, module, expert ORDER BY model, level, module, expert;
CREATE VIEW v_gate_weights AS
SELECT g.trial_id,
       e.name AS experiment,
       t.model,
       t.repeat,
       g.level,
       g.owner AS module,
       g.expert,
       g.mean,
       g.std
  FROM gate g
  JOIN trial t ON t.id = g.trial_id
  JOIN experiment e ON e.id = t.experiment_id
 WHERE g.kind = 'weights';
