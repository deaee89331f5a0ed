-- more-levels-better.sql -- AdaTT paper (Li et al., KDD 2023) §4:
-- Table 8: "adding more fusion levels results in greater performance gains".
--
-- claim: each added fusion level lowers the NE / MSE of every task (1 -> 2 -> 3 -> 4)
-- statistic: mean_diff
--   per task (its final test NE if binary, MSE if regression; read from the
--   metric table, so --metric does not matter) and pair of model.levels values:
--   a = the trials at the first value, b = at the second, over the repeats
--   (paired: a repeat's trials share the dataset); statistic
--   mean(a) - mean(b); holds when > 0 (the second value is better).
-- condition: "task=tK levels=A->B".
-- Rows (the claims contract): condition, repeat, grp, value.
, v AS (  -- each finished trial's final test NE (binary task) or MSE (regression task)
    SELECT f.trial_id, f.model, f.repeat,
           (SELECT p.value FROM param p WHERE p.trial_id = f.trial_id AND p.key = 'data.between')
               AS btw,
           CAST(substr(m.name, 12) AS INTEGER) AS task, coalesce(ne.value, m.value) AS value
      FROM final f
      JOIN trial t ON t.id = f.trial_id
      JOIN metric m ON m.trial_id = f.trial_id AND m.step = t.final_step
                   AND m.name GLOB 'test/loss/t[0-9]*'
      LEFT JOIN metric ne ON ne.trial_id = f.trial_id AND ne.step = t.final_step
                         AND ne.name = 'test/ne/' || substr(m.name, 11)
), kv AS (
    SELECT v.*, (SELECT p.value FROM param p WHERE p.trial_id = v.trial_id AND p.key = 'model.levels') AS k
      FROM v
), pairs (a, b) AS (
    VALUES (1, 2), (2, 3), (3, 4), (4, 5)
)
SELECT 'task=t' || x.task || ' levels=' || p.a || '->' || p.b AS condition, x.repeat, 'a' AS grp,
       x.value
  FROM kv x JOIN pairs p ON p.a = x.k
 WHERE EXISTS (SELECT 1 FROM kv y WHERE y.k = p.b)
UNION ALL
SELECT 'task=t' || y.task || ' levels=' || p.a || '->' || p.b, y.repeat, 'b', y.value
  FROM kv y JOIN pairs p ON p.b = y.k
 WHERE EXISTS (SELECT 1 FROM kv x WHERE x.k = p.a);
