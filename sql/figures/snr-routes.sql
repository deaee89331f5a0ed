-- snr-routes.sql -- the learned routes of SNR trials drawn as a graph (issue
-- 13, item 5): nodes by layer (the input x, the sub-networks of each routing
-- layer, the task towers t1..tT), an edge per connection coloured by its
-- serving estimate ẑ (closed connections, ẑ = 0, dashed grey).
--
-- One panel per model (rows) and between-group correlation (columns:
-- data.between, NULL without groups), drawing the repeat-0 trial of each
-- done (model, config) of experiment :experiment (default snr-recovery)
-- that recorded 'z' routes, shallower networks first.  One row per connection, in layer, src, dst
-- order: the trial, layer, src, dst; the drawing coordinates (x1, y1) ->
-- (x2, y2) (x = the level: 0 the input, layer l's units at l; y = the
-- unit's index centred on its level); z (ẑ) and p_open (P(z != 0)); the
-- labels of both ends ("x", "s1.2" = sub-network 2 of layer 1, "t3").
--
--   sqlite3 results.db -cmd ".param set :experiment 'snr-recovery'" < sql/figures/snr-routes.sql
WITH tr AS (
    SELECT t.id, t.model,
           (SELECT p.value FROM param p WHERE p.trial_id = t.id AND p.key = 'data.between')
               AS "between"
      FROM trial t
      JOIN experiment e ON e.id = t.experiment_id
     WHERE e.name = :experiment AND t.status = 'done' AND t.repeat = 0
       AND EXISTS (SELECT 1 FROM route r WHERE r.trial_id = t.id AND r.kind = 'z')
), edge AS (
    SELECT r.* FROM route r JOIN tr ON tr.id = r.trial_id WHERE r.kind = 'z'
), node AS (
    SELECT trial_id, layer - 1 AS level, src AS unit FROM edge
    UNION
    SELECT trial_id, layer, dst FROM edge
), width AS (
    SELECT trial_id, level, count(*) AS n FROM node GROUP BY trial_id, level
), top AS (
    SELECT trial_id, max(layer) AS layer FROM edge GROUP BY trial_id
)
SELECT tr.model, tr."between", tr.id AS trial_id, r.layer, r.src, r.dst,
       r.layer - 1 AS x1, r.src - (w1.n - 1) / 2.0 AS y1,
       r.layer AS x2, r.dst - (w2.n - 1) / 2.0 AS y2,
       r.value AS z,
       (SELECT p.value FROM route p
         WHERE p.trial_id = r.trial_id AND p.kind = 'p_open' AND p.layer = r.layer
           AND p.src = r.src AND p.dst = r.dst) AS p_open,
       CASE WHEN r.layer = 1 AND w1.n = 1 THEN 'x'
            ELSE 's' || (r.layer - 1) || '.' || (r.src + 1) END AS src_label,
       CASE WHEN r.layer = top.layer THEN 't' || (r.dst + 1)
            ELSE 's' || r.layer || '.' || (r.dst + 1) END AS dst_label
  FROM tr
  JOIN edge r ON r.trial_id = tr.id
  JOIN width w1 ON w1.trial_id = r.trial_id AND w1.level = r.layer - 1
  JOIN width w2 ON w2.trial_id = r.trial_id AND w2.level = r.layer
  JOIN top ON top.trial_id = r.trial_id
 ORDER BY tr.model, top.layer, tr."between", tr.id, r.layer, r.src, r.dst;
