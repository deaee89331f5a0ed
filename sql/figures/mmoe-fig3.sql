-- mmoe-fig3.sql -- MMoE Fig 3: the Shared-Bottom model's loss curve at each
-- task correlation, averaged over repeats.
--
-- One row per line point: for each model, learning rate and weight cosine
-- (data.correlation) of experiment :experiment (default mmoe-fig3), at each
-- evaluation step, the mean of metric :metric (default test/loss/t1: the
-- two tasks are symmetric, so the paper reports one) over the n finished
-- repeats, with their population sd, min and max (from v_curve).  One line
-- per (model, lr, correlation); an experiment whose configs also differ in
-- other keys would put several configs on one line.
--
--   sqlite3 results.db -cmd ".param set :experiment 'mmoe-fig3'" \
--       -cmd ".param set :metric 'test/loss/t1'" < sql/figures/mmoe-fig3.sql
SELECT model, lr, correlation, step, n, mean, sd, min, max
  FROM v_curve
 WHERE experiment_id = (SELECT id FROM experiment WHERE name = :experiment)
   AND name = :metric
 ORDER BY CASE model WHEN 'shared_bottom' THEN 1 WHEN 'omoe' THEN 2 WHEN 'mmoe' THEN 3 ELSE 4 END,
          model, lr, correlation DESC, step;
