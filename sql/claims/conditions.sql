-- conditions.sql -- what every claim query starts with (sql/claims/README.md):
-- the experiment's finished trials and the condition each belongs to.
--
-- `mtlab claims` runs each sql/claims/PAPER/NAME.sql as this text followed
-- by the claim's own: the claim continues the WITH clause (", name AS
-- (...)" for more CTEs) or starts its SELECT, and reads
--   final(trial_id, model, repeat, correlation, value): one row per finished
--     trial of :experiment with its final :metric;
--   cond(..., setting): the same with the trial's setting, "key=value ..."
--     over the keys that split conditions (below).
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
