-- shared-bottom-spread-widest.sql -- MMoE paper (Ma et al., KDD'18), Fig 5:
-- Shared-Bottom's final losses spread the widest.
--
-- claim: at each correlation, Shared-Bottom's sd of the final loss over repeats is above every other model's
-- statistic: sd_diff
--   a = Shared-Bottom's final losses, b = the other model's, at one
--   correlation; statistic sd(a) - sd(b) (sample sd, n - 1); holds when > 0.
-- condition: "correlation=C vs=MODEL" and the setting (sql/claims/README.md).
-- Rows (the claims contract): condition, repeat, grp, value.
SELECT trim(a.setting || ' correlation=' || a.correlation || ' vs=' || m.model) AS condition,
       a.repeat, 'a' AS grp, a.value
  FROM cond a
  JOIN (SELECT DISTINCT model, correlation FROM final WHERE model <> 'shared_bottom') m
    ON m.correlation = a.correlation
 WHERE a.model = 'shared_bottom'
UNION ALL
SELECT trim(b.setting || ' correlation=' || b.correlation || ' vs=' || b.model), b.repeat, 'b',
       b.value
  FROM cond b
 WHERE b.model <> 'shared_bottom'
   AND EXISTS (SELECT 1 FROM final f WHERE f.model = 'shared_bottom'
                                       AND f.correlation = b.correlation);
