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
-- The band around each line: lo = mean - half, hi = mean + half, with half
-- chosen by :band (mtlab plot --band, default ci95): 'ci95' the 95 %
-- confidence half-width of the mean, t(0.975, n - 1) * se (Student t);
-- 'se' the standard error se = sd_sample / sqrt(n); 'sd' the sample sd
-- (divides by n - 1); 'none' no band (NULL).  NULL, too, for n < 2.
--
--   sqlite3 results.db -cmd ".param set :experiment 'mmoe-fig3'" \
--       -cmd ".param set :metric 'test/loss/t1'" -cmd ".param set :band 'ci95'" \
--       < sql/figures/mmoe-fig3.sql
WITH t975(df, t) AS (  -- Student t, 0.975 quantile (as plot/curves.c)
    VALUES (1, 12.7062), (2, 4.3027), (3, 3.1824), (4, 2.7764), (5, 2.5706), (6, 2.4469),
           (7, 2.3646), (8, 2.3060), (9, 2.2622), (10, 2.2281), (11, 2.2010), (12, 2.1788),
           (13, 2.1604), (14, 2.1448), (15, 2.1314), (16, 2.1199), (17, 2.1098), (18, 2.1009),
           (19, 2.0930), (20, 2.0860), (21, 2.0796), (22, 2.0739), (23, 2.0687), (24, 2.0639),
           (25, 2.0595), (26, 2.0555), (27, 2.0518), (28, 2.0484), (29, 2.0452), (30, 2.0423)
), curve AS (
    SELECT model, lr, correlation, step, n, mean, sd, min, max, sd_sample, se,
           CASE :band WHEN 'sd' THEN sd_sample
                  WHEN 'se' THEN se
                  WHEN 'ci95' THEN se * coalesce(
                      (SELECT t FROM t975 WHERE df = n - 1),  -- above 30: Cornish-Fisher
                      1.959963984540054 + 2.372271230298562 / (n - 1)
                          + 2.8224986157396112 / ((n - 1) * (n - 1)))
       END AS half
      FROM v_curve
     WHERE experiment_id = (SELECT id FROM experiment WHERE name = :experiment)
       AND name = :metric
)
SELECT model, lr, correlation, step, n, mean, sd, min, max, sd_sample, se,
       mean - half AS lo, mean + half AS hi
  FROM curve
 ORDER BY CASE model WHEN 'shared_bottom' THEN 1 WHEN 'omoe' THEN 2 WHEN 'mmoe' THEN 3 ELSE 4 END,
          model, lr, correlation DESC, step;
