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
), span AS (
    SELECT min(correlation) AS lo, max(correlation) AS hi FROM final
)
SELECT trim(c.setting || ' model=' || c.model) AS condition, c.repeat,
       CASE WHEN c.correlation = s.lo THEN 'a' ELSE 'b' END AS grp, c.value
  FROM cond c, span s
 WHERE s.lo < s.hi AND c.correlation IN (s.lo, s.hi);
