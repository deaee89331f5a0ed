-- snr-recovery.sql -- route recovery against the between-group correlation
-- (issue 13, item 4): how well each model's learned sharing matches the true
-- task groups (v_route_recovery, sql/routes/recovery.sql: mean overlap of
-- the tasks' bottom units within groups minus between groups; 1 = the
-- groups exactly, 0 = sharing blind to them) as the groups grow alike.
--
-- One row per (model, levels, between) of experiment :experiment (default
-- snr-recovery), over the n done trials with a score: the mean and sample sd
-- (n - 1) of the score, and the mean within- and between-group overlaps.
-- between is data.between (the correlation across groups), levels
-- model.levels (layers of sub-networks or experts; NULL for MMoE).
--
--   sqlite3 results.db -cmd ".param set :experiment 'snr-recovery'" < sql/figures/snr-recovery.sql
WITH s AS (
    SELECT t.model,
           (SELECT p.value FROM param p WHERE p.trial_id = t.id AND p.key = 'data.between')
               AS "between",
           (SELECT p.value FROM param p WHERE p.trial_id = t.id AND p.key = 'model.levels')
               AS levels,
           r.score AS f, r.within_groups, r.between_groups
      FROM trial t
      JOIN experiment e ON e.id = t.experiment_id
      JOIN v_route_recovery r ON r.trial_id = t.id
     WHERE e.name = :experiment AND t.status = 'done' AND r.score IS NOT NULL
)
SELECT model, levels, "between",
       count(*) AS n,
       avg(f) AS mean,
       CASE WHEN count(*) > 1
            THEN sqrt(max(sum(f * f) - sum(f) * sum(f) / count(*), 0.0) / (count(*) - 1)) END AS sd,
       avg(within_groups) AS within_groups,
       avg(between_groups) AS between_groups
  FROM s
 GROUP BY model, levels, "between"
 ORDER BY CASE model WHEN 'snr_trans' THEN 1 WHEN 'snr_aver' THEN 2 ELSE 3 END, model,
          levels, "between";
