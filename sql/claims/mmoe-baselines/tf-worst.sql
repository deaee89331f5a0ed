-- tf-worst.sql -- MMoE paper (Ma et al., KDD'18) §6:
-- "The Tensor-Factorization method is the worst in both groups" (census, §6.3).
--
-- claim: Tensor-factorization has a higher final loss than every other family
-- statistic: mean_diff
--   per task correlation and pair of families, each family at its chosen grid
--   point (the setting -- column_hidden, l2_alpha, rank1, rank3 -- with the
--   lowest mean final val/loss/total at that correlation, as
--   sql/figures/mmoe-table-baselines.sql chooses it; the choice is made once
--   on all repeats, not inside the bootstrap): a = the first family's final
--   :metric, b = the second's, over the repeats; statistic mean(a) - mean(b);
--   holds when > 0 (the second family is better).
-- condition: "correlation=C a=MODEL b=MODEL".
-- Run: mtlab claims mmoe-baselines --paper mmoe-baselines
-- Rows (the claims contract): condition, repeat, grp, value.
, s AS (
    SELECT f.trial_id, f.model, f.repeat, f.correlation, f.value,
           coalesce((SELECT group_concat(substr(p.key, 7) || '=' || p.value, ' ')
                       FROM param p
                      WHERE p.trial_id = f.trial_id
                        AND p.key IN ('model.column_hidden', 'model.l2_alpha', 'model.rank1',
                                      'model.rank3')), '') AS setting,
           (SELECT m.value FROM metric m JOIN trial t ON t.id = m.trial_id
             WHERE m.trial_id = f.trial_id AND m.step = t.final_step
               AND m.name = 'val/loss/total') AS val
      FROM final f
), best AS (
    SELECT model, correlation, setting,
           row_number() OVER (PARTITION BY model, correlation ORDER BY avg(val), setting) AS r
      FROM s GROUP BY model, correlation, setting
), chosen AS (
    SELECT s.* FROM s JOIN best b ON b.model = s.model AND b.correlation IS s.correlation
                                 AND b.setting = s.setting AND b.r = 1
), pairs (a, b) AS (
    VALUES ('tensor_factorization', 'shared_bottom'), ('tensor_factorization', 'omoe'),
           ('tensor_factorization', 'mmoe'), ('tensor_factorization', 'l2_constrained'),
           ('tensor_factorization', 'cross_stitch')
)
SELECT 'correlation=' || x.correlation || ' a=' || p.a || ' b=' || p.b AS condition, x.repeat,
       'a' AS grp, x.value
  FROM chosen x JOIN pairs p ON p.a = x.model
 WHERE EXISTS (SELECT 1 FROM chosen y WHERE y.model = p.b)
UNION ALL
SELECT 'correlation=' || y.correlation || ' a=' || p.a || ' b=' || p.b, y.repeat, 'b', y.value
  FROM chosen y JOIN pairs p ON p.b = y.model
 WHERE EXISTS (SELECT 1 FROM chosen x WHERE x.model = p.a);
