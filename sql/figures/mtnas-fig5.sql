-- mtnas-fig5.sql -- MTNAS Fig 5: the routes the search derived, drawn as a
-- graph (issue 14, item 4): nodes by layer (the root feature, the
-- sub-networks of each layer, the task towers t1..tT); an edge from each
-- sub-network of layer l - 1 to each block above it (a sub-network of layer
-- l >= 2, or a task), solid and coloured by P(src in V) -- the final
-- probability that the block's value subset holds it -- when the derived
-- route reads it, dashed grey when it does not.  The root feeds every
-- layer-1 sub-network (not searched: drawn at 1).
--
-- One panel per finished mtnas trial of experiment :experiment (default
-- mtnas-rho0) with repeat < 8, in repeat order, in two rows (column
-- repeats: '0-3', '4-7').  Columns as snr-routes.sql
-- (the drawing style GP_ROUTES reads them): the trial, layer, src, dst;
-- the drawing coordinates (x1, y1) -> (x2, y2) (x = the level: 0 the root,
-- l the sub-networks of layer l, L + 1 the tasks; y = the unit's index
-- centred on its level); z (0 when the derived route does not read the
-- edge); the labels of both ends.
--
--   sqlite3 results.db -cmd ".param set :experiment 'mtnas-rho0'" < sql/figures/mtnas-fig5.sql
WITH RECURSIVE tr AS (
    SELECT t.id, t.model, t.repeat,
           (SELECT CAST(p.value AS INTEGER) FROM param p
             WHERE p.trial_id = t.id AND p.key = 'model.subnets') AS h
      FROM trial t
      JOIN experiment e ON e.id = t.experiment_id
     WHERE e.name = :experiment AND t.status = 'done' AND t.model = 'mtnas' AND t.repeat < 8
       AND EXISTS (SELECT 1 FROM route r WHERE r.trial_id = t.id AND r.kind = 'value')
), unit (trial_id, j) AS (  -- the sub-networks of layer 1, 0-based
    SELECT id, 0 FROM tr
    UNION ALL
    SELECT u.trial_id, u.j + 1 FROM unit u JOIN tr ON tr.id = u.trial_id WHERE u.j + 1 < tr.h
), edge AS (
    SELECT r.trial_id, r.layer, r.src, r.dst,
           r.value * coalesce((SELECT p.value FROM route p
                                WHERE p.trial_id = r.trial_id AND p.kind = 'prob'
                                  AND p.layer = r.layer AND p.src = r.src AND p.dst = r.dst),
                              1) AS z
      FROM route r JOIN tr ON tr.id = r.trial_id
     WHERE r.kind = 'value'
    UNION ALL
    SELECT trial_id, 1, 0, j, 1.0 FROM unit
), node AS (
    SELECT trial_id, layer - 1 AS level, src AS unit FROM edge
    UNION
    SELECT trial_id, layer, dst FROM edge
), width AS (
    SELECT trial_id, level, count(*) AS n FROM node GROUP BY trial_id, level
), top AS (
    SELECT trial_id, max(layer) AS layer FROM edge GROUP BY trial_id
)
SELECT CASE WHEN tr.repeat < 4 THEN '0-3' ELSE '4-7' END AS repeats, tr.repeat,
       tr.id AS trial_id, r.layer, r.src, r.dst,
       r.layer - 1 AS x1, r.src - (w1.n - 1) / 2.0 AS y1,
       r.layer AS x2, r.dst - (w2.n - 1) / 2.0 AS y2,
       r.z,
       CASE WHEN r.layer = 1 THEN 'root' ELSE 's' || (r.layer - 1) || '.' || (r.src + 1) END
           AS src_label,
       CASE WHEN r.layer = top.layer THEN 't' || (r.dst + 1)
            ELSE 's' || r.layer || '.' || (r.dst + 1) END AS dst_label
  FROM tr
  JOIN edge r ON r.trial_id = tr.id
  JOIN width w1 ON w1.trial_id = r.trial_id AND w1.level = r.layer - 1
  JOIN width w2 ON w2.trial_id = r.trial_id AND w2.level = r.layer
  JOIN top ON top.trial_id = r.trial_id
 ORDER BY tr.repeat, tr.id, r.layer, r.src, r.dst;
