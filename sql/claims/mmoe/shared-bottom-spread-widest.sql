-- shared-bottom-spread-widest.sql -- MMoE paper (Ma et al., KDD'18), Fig 5:
-- Shared-Bottom's final losses spread the widest.
--
-- claim: at each correlation, Shared-Bottom's sd of the final loss over repeats is above every other model's
-- statistic: sd_diff
--   a = Shared-Bottom's final losses, b = the other model's, at one
--   correlation; statistic sd(a) - sd(b) (sample sd, n - 1); holds when > 0.
-- condition: "correlation=C vs=MODEL" and the setting (sql/claims/README.md).
-- Rows (the claims contract): condition, repeat, grp, value.
WITH final AS (
    -- one row per finished trial: its final :metric
    SELECT trial_id, model, repeat, correlation, value
      FROM v_final
     WHERE experiment = :experiment AND name = :metric AND value IS NOT NULL
), cond_key AS (
    -- the settings that split conditions: keys every trial has, whose value
    -- varies among the trials of one model, other than data.correlation
    SELECT key
      FROM (SELECT p.key, f.model, count(*) AS n, count(DISTINCT p.value) AS n_values
              FROM final f
              JOIN param p ON p.trial_id = f.trial_id
             WHERE p.key <> 'data.correlation'
             GROUP BY p.key, f.model)
     GROUP BY key
    HAVING sum(n) = (SELECT count(*) FROM final) AND max(n_values) > 1
), cond AS (
    -- each trial with its setting: "key=value ..." of those keys, by key
    SELECT f.*,
           coalesce((SELECT group_concat(kv, ' ')
                       FROM (SELECT p.key || '=' || p.value AS kv
                               FROM param p
                               JOIN cond_key k ON k.key = p.key
                              WHERE p.trial_id = f.trial_id
                              ORDER BY p.key)), '') AS setting
      FROM final f
)
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
