-- moe-beats-shared-bottom.sql -- MMoE paper (Ma et al., KDD'18), Fig 4/5:
-- the MoE models beat Shared-Bottom on average.
--
-- claim: each MoE model (OMoE, MMoE) has a lower mean final loss than Shared-Bottom, over all correlations
-- statistic: mean_diff
--   a = Shared-Bottom's final losses, b = the MoE model's, pooled over the
--   task correlations; statistic mean(a) - mean(b); holds when > 0.
-- condition: "moe=MODEL" and the setting (the keys that vary within a
--   model, see sql/claims/README.md).
-- Rows (the claims contract): condition, repeat, grp, value.
SELECT trim(a.setting || ' moe=' || m.model) AS condition, a.repeat, 'a' AS grp, a.value
  FROM cond a
  JOIN (SELECT DISTINCT model FROM final WHERE model IN ('omoe', 'mmoe')) m
 WHERE a.model = 'shared_bottom'
UNION ALL
SELECT trim(b.setting || ' moe=' || b.model), b.repeat, 'b', b.value
  FROM cond b
 WHERE b.model IN ('omoe', 'mmoe')
   AND EXISTS (SELECT 1 FROM final WHERE model = 'shared_bottom');
