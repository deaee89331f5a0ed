-- conditions.sql -- what every claim query starts with (sql/claims/README.md).
--
-- `mtlab claims` runs prepare.sql once, then each sql/claims/PAPER/NAME.sql as
-- this text followed by the claim's own: the claim continues the WITH clause
-- (", name AS (...)" for more CTEs) or starts its SELECT, and reads
--   final(trial_id, model, repeat, correlation, value): one row per finished
--     trial of :experiment with its final :metric;
--   cond(..., setting): each trial under each setting it belongs to,
--     "key=value ..." over the keys that split conditions (prepare.sql).
WITH final AS (
    SELECT trial_id, model, repeat, correlation, value FROM temp.claim_final
), cond AS (
    SELECT trial_id, model, repeat, correlation, value, setting FROM temp.claim_cond
)
