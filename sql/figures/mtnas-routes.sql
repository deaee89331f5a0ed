-- mtnas-routes.sql -- the derived routes MTNAS finds (Fig 5 as a count):
-- for each task block (the top routing layer, dst = task - 1) of the
-- finished mtnas trials of experiment :experiment (default mtnas-rho0), the
-- value subset it reads ("s1+s3": sub-networks of the last layer, 1-based)
-- and its query ("s2", "root", or "-" when the route reads none), with the
-- number of trials that derived it and its share of the trials.
--
--   sqlite3 results.db -cmd ".param set :experiment 'mtnas-rho0'" < sql/figures/mtnas-routes.sql
WITH top AS (
    SELECT r.trial_id, max(r.layer) AS layer
      FROM route r
      JOIN trial t ON t.id = r.trial_id
      JOIN experiment e ON e.id = t.experiment_id
     WHERE e.name = :experiment AND t.model = 'mtnas' AND t.status = 'done'
       AND r.kind = 'value'
     GROUP BY r.trial_id
), h AS (
    SELECT trial_id, CAST(value AS INTEGER) AS subnets FROM param WHERE key = 'model.subnets'
), block AS (
    SELECT top.trial_id, r.dst + 1 AS task,
           (SELECT group_concat('s' || (v.src + 1), '+')
              FROM (SELECT src FROM route v
                     WHERE v.trial_id = top.trial_id AND v.layer = top.layer AND v.dst = r.dst
                       AND v.kind = 'value' AND v.value > 0 ORDER BY src) v) AS subset,
           coalesce((SELECT CASE WHEN q.src = h.subnets THEN 'root' ELSE 's' || (q.src + 1) END
                       FROM route q
                      WHERE q.trial_id = top.trial_id AND q.layer = top.layer AND q.dst = r.dst
                        AND q.kind = 'query' AND q.value > 0), '-') AS query
      FROM top
      JOIN h USING (trial_id)
      JOIN route r ON r.trial_id = top.trial_id AND r.layer = top.layer AND r.kind = 'value'
                  AND r.src = 0
)
SELECT 't' || task AS task, subset, query, count(*) AS trials,
       round(1.0 * count(*) / (SELECT count(*) FROM top), 4) AS share
  FROM block
 GROUP BY task, subset, query
 ORDER BY task, trials DESC, subset, query;
