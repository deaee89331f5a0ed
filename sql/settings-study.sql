-- settings-study.sql -- scores every data setting of
-- experiments/mmoe/settings-study.ini against the three criteria of the
-- README ("Choosing the open settings"):
--
--   build/mtlab run experiments/mmoe/settings-study.ini --db study.db
--   build/mtlab sql --db study.db -- "$(cat sql/settings-study.sql)"
--
-- One row per (alpha, alpha_seed, noise, training size); each cell of the
-- grid (correlation x model) is first averaged over its repeats.
--   r0 .. r1            label Pearson correlation at weight cosine 0, 0.5, 0.9, 1
--                       (criterion 2: rises from ~0 to ~1)
--   best_mse_ratio      the best cell's final (10000 steps) test MSE of task 1
--                       / the mean predictor's (criterion 1: <= 0.1)
--   worst_gap           the worst cell's test / train loss at 10000 steps
--                       (criterion 1: < 2)
--   gain_last_third_10k the worst cell's validation-loss improvement from step
--                       6500 to 10000, relative to the value at 10000
--                       (criterion 3: < 10%); _4k the same from 2500 to 4000
WITH p AS (
  SELECT t.id, t.model, t.experiment_id,
    max(CASE WHEN q.key='data.alpha' THEN q.value END) alpha,
    max(CASE WHEN q.key='data.alpha_seed' THEN q.value END) aseed,
    max(CASE WHEN q.key='data.noise' THEN q.value END) noise,
    max(CASE WHEN q.key='data.train' THEN q.value END) ntrain,
    max(CASE WHEN q.key='data.correlation' THEN q.value END) corr
  FROM trial t JOIN experiment e ON e.id = t.experiment_id AND e.name = 'mmoe-settings-study'
  JOIN param q ON q.trial_id=t.id GROUP BY t.id),
run AS (
  SELECT p.alpha, p.aseed, p.noise, p.ntrain, p.corr, p.model,
    avg(CASE WHEN m.name='test/baseline/t1' THEN m.value END) base,
    avg(CASE WHEN m.name='data/pearson/t1-t2' THEN m.value END) r,
    avg(CASE WHEN m.name='test/loss/t1' AND m.step=4000 THEN m.value END) te4,
    avg(CASE WHEN m.name='test/loss/t1' AND m.step=10000 THEN m.value END) te10,
    avg(CASE WHEN m.name='train/loss/t1' AND m.step=10000 THEN m.value END) tr10,
    avg(CASE WHEN m.name='val/loss/total' AND m.step=6500 THEN m.value END) va65,
    avg(CASE WHEN m.name='val/loss/total' AND m.step=10000 THEN m.value END) va10,
    avg(CASE WHEN m.name='val/loss/total' AND m.step=2500 THEN m.value END) va25,
    avg(CASE WHEN m.name='val/loss/total' AND m.step=4000 THEN m.value END) va4
  FROM p JOIN metric m ON m.trial_id=p.id
  GROUP BY 1,2,3,4,5,6)
SELECT alpha, aseed, noise, ntrain,
  printf('%.3f', max(CASE WHEN corr=0 THEN r END)) r0,
  printf('%.3f', max(CASE WHEN corr=0.5 THEN r END)) r05,
  printf('%.3f', max(CASE WHEN corr=0.9 THEN r END)) r09,
  printf('%.3f', max(CASE WHEN corr=1 THEN r END)) r1,
  printf('%.3f', min(te10/base)) best_mse_ratio,
  printf('%.1f', max(te10/tr10)) worst_gap,
  printf('%.0f%%', 100*max((va65-va10)/va10)) gain_last_third_10k,
  printf('%.0f%%', 100*max((va25-va4)/va4)) gain_last_third_4k
FROM run GROUP BY 1,2,3,4 ORDER BY 1 DESC,2,3,4;
