-- mtnas-overlap.sql -- MTNAS §5.1's claim "no overlap exists between the two
-- tasks' sharing routes" (Fig 5, L = 1, H = 3), measured over repeats.
--
-- For every finished mtnas trial of experiment :experiment (default
-- mtnas-rho0) the derived route's task blocks (the top routing layer of the
-- route table, dst = task - 1) read a value subset of the last sub-network
-- layer (kind 'value') and, when their route has a gate, a query source
-- (kind 'query'; src = H is the root feature, no sub-network).  A pair of
-- tasks shares the sub-networks both read.  Over the trials of each
-- (levels, subnets, correlation) setting, with T = 2 (tasks 1 and 2):
--   n                   trials
--   disjoint_values     trials whose two value subsets share no sub-network
--   fraction            disjoint_values / n, and a 95% normal interval
--   disjoint_all        trials sharing no sub-network as a value or a query
--   fraction_all        disjoint_all / n
--   mean_shared         mean number of sub-networks in both value subsets
-- For L >= 2 the top layer's sub-networks are the last layer's, not the
-- bottom ones (the route recovery score follows routes all the way down).
--
--   sqlite3 results.db -cmd ".param set :experiment 'mtnas-rho0'" < sql/figures/mtnas-overlap.sql
WITH top AS (
    SELECT r.trial_id, max(r.layer) AS layer
      FROM route r
      JOIN trial t ON t.id = r.trial_id
      JOIN experiment e ON e.id = t.experiment_id
     WHERE e.name = :experiment AND t.model = 'mtnas' AND t.status = 'done'
       AND r.kind = 'value'
     GROUP BY r.trial_id
), reads AS (
    SELECT r.trial_id, r.dst AS task, r.src AS unit, r.kind
      FROM route r JOIN top USING (trial_id)
     WHERE r.layer = top.layer AND r.kind IN ('value', 'query') AND r.value > 0
       AND r.src < (SELECT CAST(value AS INTEGER) FROM param p
                     WHERE p.trial_id = r.trial_id AND p.key = 'model.subnets')
), per_trial AS (
    SELECT top.trial_id,
           (SELECT count(*) FROM reads a JOIN reads b
                ON a.trial_id = b.trial_id AND a.unit = b.unit
             WHERE a.trial_id = top.trial_id AND a.task = 0 AND b.task = 1
               AND a.kind = 'value' AND b.kind = 'value') AS shared_values,
           (SELECT count(DISTINCT a.unit) FROM reads a JOIN reads b
                ON a.trial_id = b.trial_id AND a.unit = b.unit
             WHERE a.trial_id = top.trial_id AND a.task = 0 AND b.task = 1) AS shared_all
      FROM top
), setting AS (
    SELECT p.trial_id,
           max(CASE WHEN q.key = 'model.levels' THEN q.value END) AS levels,
           max(CASE WHEN q.key = 'model.subnets' THEN q.value END) AS subnets,
           max(CASE WHEN q.key = 'data.correlation' THEN q.value END) AS correlation
      FROM per_trial p JOIN param q ON q.trial_id = p.trial_id
     GROUP BY p.trial_id
)
SELECT s.levels, s.subnets, s.correlation,
       count(*) AS n,
       sum(p.shared_values = 0) AS disjoint_values,
       round(1.0 * sum(p.shared_values = 0) / count(*), 4) AS fraction,
       round(max(0.0, 1.0 * sum(p.shared_values = 0) / count(*)
             - 1.96 * sqrt((1.0 * sum(p.shared_values = 0) / count(*))
                           * (1 - 1.0 * sum(p.shared_values = 0) / count(*)) / count(*))), 4)
           AS ci_lo,
       round(min(1.0, 1.0 * sum(p.shared_values = 0) / count(*)
             + 1.96 * sqrt((1.0 * sum(p.shared_values = 0) / count(*))
                           * (1 - 1.0 * sum(p.shared_values = 0) / count(*)) / count(*))), 4)
           AS ci_hi,
       sum(p.shared_all = 0) AS disjoint_all,
       round(1.0 * sum(p.shared_all = 0) / count(*), 4) AS fraction_all,
       round(avg(p.shared_values), 4) AS mean_shared
  FROM per_trial p JOIN setting s USING (trial_id)
 GROUP BY s.levels, s.subnets, s.correlation
 ORDER BY s.levels, s.subnets, s.correlation;
