-- cross-stitch-weakest.sql -- AdaTT paper (Li et al., KDD 2023) §4:
-- Tables 1-4: Cross-stitch is the weakest soft-sharing model.
--
-- claim: Cross-stitch has a higher NE / MSE than every other soft-sharing family (MMoE, ML-MMoE, PLE, AdaTT-sp, AdaTT) on every task
-- statistic: mean_diff
--   per task (its final test NE if binary, MSE if regression; read from the
--   metric table, so --metric does not matter) and pair of families:
--   a = the first family's values, b = the second's, over the repeats
--   (paired: a repeat's families share the dataset); statistic
--   mean(a) - mean(b); holds when > 0 (the second family is better).
-- condition: "between=B" (between sweep only) "task=tK a=MODEL b=MODEL".
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
), pairs (a, b) AS (
    VALUES ('cross_stitch', 'mmoe'), ('cross_stitch', 'ml_mmoe'), ('cross_stitch', 'ple'),
           ('cross_stitch', 'adatt_sp'), ('cross_stitch', 'adatt')
)
SELECT trim(coalesce('between=' || x.btw || ' ', '') || 'task=t' || x.task || ' a=' || p.a
            || ' b=' || p.b) AS condition, x.repeat, 'a' AS grp, x.value
  FROM v x JOIN pairs p ON p.a = x.model
 WHERE EXISTS (SELECT 1 FROM v y WHERE y.model = p.b)
UNION ALL
SELECT trim(coalesce('between=' || y.btw || ' ', '') || 'task=t' || y.task || ' a=' || p.a
            || ' b=' || p.b), y.repeat, 'b', y.value
  FROM v y JOIN pairs p ON p.b = y.model
 WHERE EXISTS (SELECT 1 FROM v x WHERE x.model = p.a);
