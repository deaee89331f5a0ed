-- loss-rises-as-correlation-falls.sql -- MMoE paper (Ma et al., KDD'18),
-- Fig 3-5: every model's loss rises as the task correlation falls.
--
-- claim: per model, the mean final loss at the lowest correlation is above that at the highest
-- statistic: mean_diff
--   a = the model's final losses at the experiment's lowest correlation,
--   b = at its highest; statistic mean(a) - mean(b); holds when > 0.  (The
--   end points only: a dip in between does not count against the claim.)
-- condition: "model=MODEL" and the setting (sql/claims/README.md).
-- Rows (the claims contract): condition, repeat, grp, value.
, span AS (
    SELECT min(correlation) AS lo, max(correlation) AS hi FROM final
)
SELECT trim(c.setting || ' model=' || c.model) AS condition, c.repeat,
       CASE WHEN c.correlation = s.lo THEN 'a' ELSE 'b' END AS grp, c.value
  FROM cond c, span s
 WHERE s.lo < s.hi AND c.correlation IN (s.lo, s.hi);
