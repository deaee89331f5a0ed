-- prepare.sql -- run once by `mtlab claims` before the claims (sql/claims/README.md):
-- the experiment's finished trials and the condition each belongs to, as
-- TEMP tables that every claim then reads through conditions.sql.
--
-- Parameters :experiment and :metric.  temp.claim_default(model, key, value)
-- exists already, filled by the C step from the model registry: the value a
-- trial of family `model` has for a key its config omits at the default
-- (model.init = glorot, model.gate_bias = off: README "Identity").
DROP TABLE IF EXISTS temp.claim_final;
DROP TABLE IF EXISTS temp.claim_kv;
DROP TABLE IF EXISTS temp.claim_cond_key;
DROP TABLE IF EXISTS temp.claim_cond;

-- one row per finished trial: its final :metric
CREATE TEMP TABLE claim_final AS
SELECT trial_id, model, repeat, correlation, value
  FROM v_final
 WHERE experiment = :experiment AND name = :metric AND value IS NOT NULL;

-- every trial's settings, data.correlation aside: the keys of its config and
-- the defaults its config leaves out
CREATE TEMP TABLE claim_kv AS
SELECT p.trial_id, p.key, p.value
  FROM claim_final f
  JOIN param p ON p.trial_id = f.trial_id
 WHERE p.key <> 'data.correlation'
UNION ALL
SELECT f.trial_id, d.key, d.value
  FROM claim_final f
  JOIN temp.claim_default d ON d.model = f.model
 WHERE NOT EXISTS (SELECT 1 FROM param p WHERE p.trial_id = f.trial_id AND p.key = d.key);
CREATE INDEX temp.claim_kv_trial ON claim_kv (trial_id, key);

-- the keys that split conditions: those whose value varies among the trials
-- of one model; i numbers them by key
CREATE TEMP TABLE claim_cond_key AS
SELECT key, row_number() OVER (ORDER BY key) AS i
  FROM (SELECT k.key
          FROM claim_kv k
          JOIN claim_final f ON f.trial_id = k.trial_id
         GROUP BY k.key, f.model
        HAVING count(DISTINCT k.value) > 1)
 GROUP BY key;

-- each trial under each setting it belongs to, "key=value ..." by key.  A
-- trial without the key (a family that does not have it: Shared-Bottom has no
-- gate bias) belongs to every value of it, so it is compared with each.
CREATE TEMP TABLE claim_cond AS
WITH RECURSIVE vals AS (
    SELECT DISTINCT k.key, k.value FROM claim_kv k JOIN claim_cond_key c ON c.key = k.key
), build (trial_id, i, setting) AS (
    SELECT trial_id, 0, '' FROM claim_final
    UNION ALL
    SELECT b.trial_id, c.i,
           b.setting || CASE WHEN b.i = 0 THEN '' ELSE ' ' END || c.key || '=' || v.value
      FROM build b
      JOIN claim_cond_key c ON c.i = b.i + 1
      JOIN vals v ON v.key = c.key
     WHERE v.value = (SELECT k.value FROM claim_kv k WHERE k.trial_id = b.trial_id AND k.key = c.key)
        OR NOT EXISTS (SELECT 1 FROM claim_kv k WHERE k.trial_id = b.trial_id AND k.key = c.key)
)
SELECT f.trial_id, f.model, f.repeat, f.correlation, f.value, b.setting
  FROM claim_final f
  JOIN build b ON b.trial_id = f.trial_id
 WHERE b.i = (SELECT count(*) FROM claim_cond_key);
