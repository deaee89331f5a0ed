-- mmoe-gap-smallest.sql -- MMoE paper (Ma et al., KDD'18), Fig 4: MMoE's
-- loss gap between correlations is the smallest of the models.
--
-- claim: MMoE's |loss(lowest correlation) - loss(highest)| is below every other model's
-- statistic: abs_gap_diff
--   a1, a2 = the other model's final losses at the lowest and the highest
--   correlation, b1, b2 = MMoE's; statistic
--   |mean(a1) - mean(a2)| - |mean(b1) - mean(b2)|; holds when > 0.
-- condition: "vs=MODEL" (the other model) and the setting
--   (sql/claims/README.md).
-- Rows (the claims contract): condition, repeat, grp, value.
, span AS (
    SELECT min(correlation) AS lo, max(correlation) AS hi FROM final
), other AS (
    SELECT DISTINCT model FROM final WHERE model <> 'mmoe'
)
SELECT trim(c.setting || ' vs=' || c.model) AS condition, c.repeat,
       CASE WHEN c.correlation = s.lo THEN 'a1' ELSE 'a2' END AS grp, c.value
  FROM cond c, span s
 WHERE s.lo < s.hi AND c.correlation IN (s.lo, s.hi) AND c.model <> 'mmoe'
   AND EXISTS (SELECT 1 FROM final WHERE model = 'mmoe')
UNION ALL
SELECT trim(c.setting || ' vs=' || o.model), c.repeat,
       CASE WHEN c.correlation = s.lo THEN 'b1' ELSE 'b2' END, c.value
  FROM cond c, span s, other o
 WHERE s.lo < s.hi AND c.correlation IN (s.lo, s.hi) AND c.model = 'mmoe';
