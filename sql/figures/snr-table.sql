-- snr-table.sql -- the λ sweep in numbers (the findings' table): per model
-- and λ (model.l0_lambda) of experiment :experiment (default snr-lambda), over
-- the n done trials (failed: diverged ones), the means of: the connections
-- (conn), the expected L0 Σ P(z != 0) (l0) with its sample sd, the open
-- connections ẑ > 0 (open) with its sd, the serving parameter count
-- (model/serving_params), the final :metric (default test/loss/total) with
-- its sd, and the route recovery score (NULL without data.groups).
--
--   sqlite3 results.db -cmd ".param set :experiment 'snr-lambda'" \
--       -cmd ".param set :metric 'test/loss/total'" < sql/figures/snr-table.sql
WITH tr AS (
    SELECT t.id, t.model, t.status, t.final_step,
           (SELECT p.value FROM param p WHERE p.trial_id = t.id AND p.key = 'model.l0_lambda')
               AS lambda
      FROM trial t
      JOIN experiment e ON e.id = t.experiment_id
     WHERE e.name = :experiment
), per_trial AS (
    SELECT tr.id, tr.model, tr.lambda,
           (SELECT count(*) FROM route r WHERE r.trial_id = tr.id AND r.kind = 'z') AS conn,
           (SELECT sum(r.value) FROM route r WHERE r.trial_id = tr.id AND r.kind = 'p_open') AS l0,
           (SELECT 1.0 * sum(r.value > 0) FROM route r WHERE r.trial_id = tr.id AND r.kind = 'z')
               AS open,
           (SELECT m.value FROM metric m WHERE m.trial_id = tr.id
               AND m.name = 'model/serving_params' AND m.step = tr.final_step) AS serving,
           (SELECT m.value FROM metric m WHERE m.trial_id = tr.id AND m.name = :metric
               AND m.step = tr.final_step) AS loss,
           (SELECT r.score FROM v_route_recovery r WHERE r.trial_id = tr.id) AS recovery
      FROM tr WHERE tr.status = 'done'
)
SELECT p.model, p.lambda, count(*) AS n,
       (SELECT count(*) FROM tr WHERE tr.model = p.model AND tr.lambda IS p.lambda
           AND tr.status = 'failed') AS failed,
       avg(conn) AS conn,
       avg(l0) AS l0,
       CASE WHEN count(l0) > 1 THEN sqrt(max(sum(l0 * l0) - sum(l0) * sum(l0) / count(l0), 0.0)
                                         / (count(l0) - 1)) END AS l0_sd,
       avg(open) AS open,
       CASE WHEN count(open) > 1
            THEN sqrt(max(sum(open * open) - sum(open) * sum(open) / count(open), 0.0)
                      / (count(open) - 1)) END AS open_sd,
       avg(serving) AS serving,
       avg(loss) AS loss,
       CASE WHEN count(loss) > 1
            THEN sqrt(max(sum(loss * loss) - sum(loss) * sum(loss) / count(loss), 0.0)
                      / (count(loss) - 1)) END AS loss_sd,
       avg(recovery) AS recovery
  FROM per_trial p
 GROUP BY p.model, p.lambda
 ORDER BY p.model, p.lambda;
