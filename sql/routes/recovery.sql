-- routes/recovery.sql -- which bottom units each task uses, and how well the
-- learned sharing recovers the true task groups (issue 13, item 4).  Views
-- of the store, created with those of views.sql (and recreated with them);
-- the ONE definition of the route recovery score for every family that
-- records routes or gates.
--
-- 1. Use.  For every trial and task (1-based, as in the metric names "t1")
--    and every bottom unit (0-based: a sub-network of the first routing
--    layer, or a first-level expert) a weight use in [0, 1]:
--      routes (SNR 'z', MTNAS 'value'; conventions in
--      migrations/004-gates-routes.sql): use = 1 when the task's tower is
--      reached from the unit through open connections (value > 0: ẑ > 0,
--      or a derived value edge) -- and, when the trial records routes out of
--      the model input (layer 1), the unit itself is fed by an open one --
--      else 0.  The towers are the units of the trial's top layer (dst =
--      task - 1); the bottom units those of layer 1 (dst of layer 1, src of
--      layer 2); a trial needs 2 layers or more.
--      gates (only where no such route is recorded; families whose gates of
--      one level all index the same experts: mmoe and ml_mmoe): use = the
--      gate mass the task puts on each level-1 expert, the mean over the test
--      set of its gate's weights (gate.mean), pushed down through the
--      gates of the lower levels (owner "e<j>" mixes level-l experts into
--      level-(l+1) expert j): mass(l, i) = Σ_j mass(l+1, j) · mean(gate l
--      "e<j+1>", expert i).  Products of means, not means of products: the
--      store keeps no per-example gate values.  Each task's masses sum to 1.
--      PLE/CGC and AdaTT gates index each task's own experts and the
--      shared ones, a mapping the store does not hold: not scored.
-- 2. Overlap of two tasks a < b of a trial (weighted Jaccard):
--      overlap = Σ_u min(use_a(u), use_b(u)) / Σ_u max(use_a(u), use_b(u)),
--    0 when both use nothing.  For sets it is |A ∩ B| / |A ∪ B|; for gate
--    masses 1 when both tasks spread their mass identically.
-- 3. Recovery score, for a trial with data.groups (the true groups:
--    consecutive tasks, "2 2" = {t1, t2}, {t3, t4}):
--      score = mean overlap of the pairs in the same group
--            - mean overlap of the pairs in different groups,
--    in [-1, 1]: 1 when tasks of a group use exactly the same units and
--    tasks of different groups disjoint ones, 0 when the sharing ignores the
--    groups (every task using every unit, or uniform gates), NULL without a
--    pair of each kind (e.g. "1 1", or no data.groups).
-- The recorder stores the score as the metric model/route_recovery at the
-- trial's final step when it finishes a trial (store_finish); for trials
-- recorded before, read it from v_route_recovery.

-- The true group (1-based) of every task of a trial with data.groups.
CREATE VIEW v_route_task_group AS
WITH RECURSIVE split(trial_id, grp, size, rest) AS (
    SELECT trial_id, 0, 0, trim(replace(CAST(value AS TEXT), ',', ' ')) || ' '
      FROM param WHERE key = 'data.groups'
    UNION ALL
    SELECT trial_id, grp + 1, CAST(substr(rest, 1, instr(rest, ' ') - 1) AS INTEGER),
           ltrim(substr(rest, instr(rest, ' ') + 1))
      FROM split WHERE rest <> ''
), sized AS (
    SELECT trial_id, grp, size,
           sum(size) OVER (PARTITION BY trial_id ORDER BY grp) - size + 1 AS first_task
      FROM split WHERE grp > 0
), counter(k) AS (
    SELECT 0 UNION ALL SELECT k + 1 FROM counter WHERE k < 63
)
SELECT s.trial_id, s.first_task + c.k AS task, s.grp
  FROM sized s JOIN counter c ON c.k < s.size;

-- Use of each bottom unit by each task (see 1. above); source 'route' or 'gate'.
CREATE VIEW v_route_use AS
WITH RECURSIVE edge(trial_id, layer, src, dst, open) AS (
    SELECT trial_id, layer, src, dst, value > 0 FROM route WHERE kind IN ('z', 'value')
), top(trial_id, layer) AS (
    SELECT trial_id, max(layer) FROM edge GROUP BY trial_id HAVING max(layer) >= 2
), unit(trial_id, unit) AS (
    SELECT e.trial_id, e.dst FROM edge e JOIN top USING (trial_id) WHERE e.layer = 1
    UNION
    SELECT e.trial_id, e.src FROM edge e JOIN top USING (trial_id) WHERE e.layer = 2
), fed(trial_id, unit) AS (
    SELECT u.trial_id, u.unit FROM unit u
     WHERE NOT EXISTS (SELECT 1 FROM edge e WHERE e.trial_id = u.trial_id AND e.layer = 1)
        OR EXISTS (SELECT 1 FROM edge e
                    WHERE e.trial_id = u.trial_id AND e.layer = 1 AND e.dst = u.unit AND e.open)
), reach(trial_id, unit, level, node) AS (
    SELECT trial_id, unit, 1, unit FROM fed
    UNION
    SELECT r.trial_id, r.unit, e.layer, e.dst
      FROM reach r
      JOIN edge e ON e.trial_id = r.trial_id AND e.layer = r.level + 1 AND e.src = r.node
     WHERE e.open
), tower(trial_id, task, node) AS (
    SELECT DISTINCT e.trial_id, e.dst + 1, e.dst FROM edge e JOIN top t USING (trial_id)
     WHERE e.layer = t.layer
), gate_path(trial_id, task, level, expert, mass) AS (
    SELECT g.trial_id, CAST(substr(g.owner, 2) AS INTEGER), g.level, g.expert, g.mean
      FROM gate g JOIN trial t ON t.id = g.trial_id
     WHERE t.model IN ('mmoe', 'ml_mmoe') AND g.kind = 'softmax' AND g.owner GLOB 't[0-9]*'
       AND NOT EXISTS (SELECT 1 FROM top WHERE top.trial_id = g.trial_id)
    UNION ALL
    SELECT p.trial_id, p.task, g.level, g.expert, p.mass * g.mean
      FROM gate_path p
      JOIN gate g ON g.trial_id = p.trial_id AND g.level = p.level - 1 AND g.kind = 'softmax'
                 AND g.owner = 'e' || (p.expert + 1)
)
SELECT w.trial_id, 'route' AS source, w.task, u.unit,
       CASE WHEN EXISTS (SELECT 1 FROM reach r JOIN top t USING (trial_id)
                          WHERE r.trial_id = w.trial_id AND r.unit = u.unit
                            AND r.level = t.layer AND r.node = w.node)
            THEN 1.0 ELSE 0.0 END AS use
  FROM tower w JOIN unit u USING (trial_id)
UNION ALL
SELECT trial_id, 'gate', task, expert, sum(mass)
  FROM gate_path WHERE level = 1
 GROUP BY trial_id, task, expert;

-- Sub-network utilisation per task (the SNR paper's Fig 5): the units a task
-- uses (sum of use: a count for routes, 1 for gate masses) out of all.
CREATE VIEW v_route_utilisation AS
SELECT trial_id, source, task, sum(use) AS used, count(*) AS units,
       sum(use) / count(*) AS utilisation
  FROM v_route_use
 GROUP BY trial_id, source, task;

-- Overlap of every pair of tasks a < b (see 2. above), with whether they
-- are in the same true group (NULL without data.groups).
CREATE VIEW v_route_overlap AS
SELECT a.trial_id, a.source, a.task AS task_a, b.task AS task_b,
       (SELECT ga.grp = gb.grp FROM v_route_task_group ga, v_route_task_group gb
         WHERE ga.trial_id = a.trial_id AND ga.task = a.task
           AND gb.trial_id = a.trial_id AND gb.task = b.task) AS same_group,
       CASE WHEN sum(max(a.use, b.use)) > 0
            THEN sum(min(a.use, b.use)) / sum(max(a.use, b.use)) ELSE 0.0 END AS overlap
  FROM v_route_use a
  JOIN v_route_use b ON b.trial_id = a.trial_id AND b.source = a.source AND b.unit = a.unit
                    AND b.task > a.task
 GROUP BY a.trial_id, a.source, a.task, b.task;

-- The route recovery score of every trial with routes or scored gates and
-- data.groups (see 3. above): the mean overlap within and between groups,
-- the number of pairs of each, and score = within - between (NULL without a
-- pair of each kind).
CREATE VIEW v_route_recovery AS
SELECT trial_id, source, within_groups, between_groups, n_within, n_between,
       within_groups - between_groups AS score
  FROM (SELECT trial_id, source,
               avg(CASE WHEN same_group THEN overlap END) AS within_groups,
               avg(CASE WHEN NOT same_group THEN overlap END) AS between_groups,
               sum(same_group) AS n_within,
               sum(NOT same_group) AS n_between
          FROM v_route_overlap
         WHERE same_group IS NOT NULL
         GROUP BY trial_id, source);
