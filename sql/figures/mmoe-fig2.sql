-- mmoe-fig2.sql -- MMoE Fig 2: the labels' Pearson correlation against the
-- cosine of the task weight vectors ("task correlation").
--
-- One row per weight cosine (data.correlation) of experiment :experiment
-- (default mmoe-fig2): over the datasets drawn at that cosine, their number
-- n, the mean and the sample standard deviation (n - 1) of the labels'
-- Pearson correlation :metric (default data/pearson/t1-t2, measured on the
-- training split at step 0; sd is NULL when n < 2).  The figure draws
-- mean +- 2 sd, as the paper does.
--
-- A dataset is one data seed: the models of one repeat train on the same
-- dataset, so a dataset counts once however many trials share it (the
-- experiment is meant to be data-only: train.steps = 0).
--
--   sqlite3 results.db -cmd ".param set :experiment 'mmoe-fig2'" \
--       -cmd ".param set :metric 'data/pearson/t1-t2'" < sql/figures/mmoe-fig2.sql
WITH dataset AS (
    SELECT DISTINCT t.data_seed, c.value AS correlation, m.value AS pearson
      FROM trial t
      JOIN experiment e ON e.id = t.experiment_id
      JOIN param c ON c.trial_id = t.id AND c.key = 'data.correlation'
      JOIN metric m ON m.trial_id = t.id AND m.name = :metric AND m.step = 0
     WHERE e.name = :experiment AND t.status = 'done' AND m.value IS NOT NULL
)
SELECT correlation,
       count(*) AS n,
       avg(pearson) AS mean,
       sqrt(max(sum(pearson * pearson) - sum(pearson) * sum(pearson) / count(*), 0.0)
            / (count(*) - 1)) AS sd
  FROM dataset
 GROUP BY correlation
 ORDER BY correlation;
