-- adatt-settings-study.sql -- scores every data setting of
-- experiments/adatt/settings-study.ini against the five criteria stated in
-- that file (and /work/briefs/readme-adatt.md "Choosing the AdaTT settings"):
--
--   build/mtlab run experiments/adatt/settings-study.ini --db study.db
--   sqlite3 -header -column study.db < sql/figures/adatt-settings-study.sql
--
-- Not a registered figure: a study table, read by hand.  One row per
-- (within, positive rate, training size, step budget S = 4000 | 8000);
-- "loss ratio" is a task's test loss / the mean predictor's (the MSE ratio
-- for the regression task t1, the NE for the binary tasks t2-t4).
--   worst_best_ratio  max over tasks of the best family's mean ratio (1: <= 0.5)
--   worst_gap         max over cells of test / train total loss   (1: < 2)
--   t1_best_mse       the best family's mean test MSE of t1       (2: > 0.02)
--   best_ne           the lowest family-mean NE of t2-t4          (2: > 0.05)
--   val_gain          max over families of the validation-loss improvement over
--                     the last third of S, relative to the value at S (3: < 10%)
--   separable_tasks   tasks whose family-mean range exceeds 2 standard errors of
--                     a family mean (seed noise; pooled over families)  (4: >= 2)
--   r_within, r_between  mean label Pearson inside / across groups (5: ratio >= 2)
WITH p AS (
  SELECT t.id, t.model,
    max(CASE WHEN q.key = 'data.within' THEN q.value END) AS within,
    max(CASE WHEN q.key = 'data.positive_rate' THEN q.value END) AS prate,
    max(CASE WHEN q.key = 'data.train' THEN q.value END) AS ntrain
  FROM trial t JOIN experiment e ON e.id = t.experiment_id AND e.name = 'adatt-settings-study'
  JOIN param q ON q.trial_id = t.id
  WHERE t.status = 'done' GROUP BY t.id),
budget(s, s0) AS (VALUES (4000, 2500), (8000, 5500)),
task(k) AS (VALUES ('t1'), ('t2'), ('t3'), ('t4')),
ratio AS (  -- one row per trial, budget and task
  SELECT p.*, b.s, task.k,
    (SELECT m.value FROM metric m WHERE m.trial_id = p.id AND m.step = b.s
        AND m.name = 'test/loss/' || task.k) AS loss,
    (SELECT m.value FROM metric m WHERE m.trial_id = p.id AND m.step = 0
        AND m.name = 'test/baseline/' || task.k) AS base
  FROM p CROSS JOIN budget b CROSS JOIN task),
cell AS (   -- family means and variances per task
  SELECT within, prate, ntrain, s, k, model, count(*) AS n,
    avg(loss / base) AS r, avg(loss) AS l,
    (sum((loss / base) * (loss / base)) - sum(loss / base) * sum(loss / base) / count(*))
        / (count(*) - 1) AS var
  FROM ratio GROUP BY 1, 2, 3, 4, 5, 6),
taskscore AS (
  SELECT within, prate, ntrain, s, k, min(r) AS best_r, min(l) AS best_l,
    max(r) - min(r) AS range_r, sqrt(avg(var) / avg(n)) AS se
  FROM cell GROUP BY 1, 2, 3, 4, 5),
gap AS (
  SELECT p.within, p.prate, p.ntrain, b.s,
    max((SELECT m.value FROM metric m WHERE m.trial_id = p.id AND m.step = b.s
            AND m.name = 'test/loss/total') /
        (SELECT m.value FROM metric m WHERE m.trial_id = p.id AND m.step = b.s
            AND m.name = 'train/loss/total')) AS worst_gap
  FROM p CROSS JOIN budget b GROUP BY 1, 2, 3, 4),
gain AS (
  SELECT within, prate, ntrain, s, max((v0 - v1) / v1) AS val_gain FROM (
    SELECT p.within, p.prate, p.ntrain, b.s, p.model,
      avg((SELECT m.value FROM metric m WHERE m.trial_id = p.id AND m.step = b.s0
              AND m.name = 'val/loss/total')) AS v0,
      avg((SELECT m.value FROM metric m WHERE m.trial_id = p.id AND m.step = b.s
              AND m.name = 'val/loss/total')) AS v1
    FROM p CROSS JOIN budget b GROUP BY 1, 2, 3, 4, 5) GROUP BY 1, 2, 3, 4),
corr AS (
  SELECT p.within, p.prate, p.ntrain,
    avg(CASE WHEN m.name IN ('data/pearson/t1-t2', 'data/pearson/t3-t4') THEN m.value END) AS rw,
    avg(CASE WHEN m.name NOT IN ('data/pearson/t1-t2', 'data/pearson/t3-t4') THEN m.value END) AS rb
  FROM p JOIN metric m ON m.trial_id = p.id AND m.name LIKE 'data/pearson/%'
  GROUP BY 1, 2, 3)
SELECT ts.within, ts.prate AS positive_rate, ts.ntrain AS train, ts.s AS steps,
  printf('%.3f', max(ts.best_r)) AS worst_best_ratio,
  printf('%.2f', g.worst_gap) AS worst_gap,
  printf('%.4f', max(CASE WHEN ts.k = 't1' THEN ts.best_l END)) AS t1_best_mse,
  printf('%.3f', min(CASE WHEN ts.k <> 't1' THEN ts.best_r END)) AS best_ne,
  printf('%.0f%%', 100 * gn.val_gain) AS val_gain,
  sum(ts.range_r > 2 * ts.se) AS separable_tasks,
  printf('%.2f', c.rw) AS r_within, printf('%.2f', c.rb) AS r_between
FROM taskscore ts
JOIN gap g ON g.within = ts.within AND g.prate = ts.prate AND g.ntrain = ts.ntrain AND g.s = ts.s
JOIN gain gn ON gn.within = ts.within AND gn.prate = ts.prate AND gn.ntrain = ts.ntrain AND gn.s = ts.s
JOIN corr c ON c.within = ts.within AND c.prate = ts.prate AND c.ntrain = ts.ntrain
GROUP BY 1, 2, 3, 4 ORDER BY 1, 2 DESC, 3, 4;
