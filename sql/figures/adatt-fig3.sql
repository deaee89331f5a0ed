-- adatt-fig3.sql -- AdaTT Fig 3: the effective expert weights of every task
-- per fusion level, tasks x experts, as heat maps.
--
-- From stored records only (the gate table through v_gate_weights, kind
-- 'weights'): a trial's weight of task module tK on expert j at level l is
-- the test-set mean of softmax gate + native weight (AllExpertGF +
-- NativeExpertLF; with one expert per task the native weight is the fixed 1,
-- so the diagonal is >= 1, as in the paper's figure).  Experts are numbered
-- in the model's order: task 1's experts, ..., task T's, then the shared
-- ones (AdaTT); unlike MMoE's they are not interchangeable, since each
-- belongs to a module, so the weights are averaged over repeats as they are.
-- One row per (model, level, task, expert) of the AdaTT families of
-- :experiment (default adatt-comparison): the repeats n, the mean weight and
-- its sample sd over repeats (NULL when n < 2).  Panels: model x level;
-- x = expert, y = task, colour = weight.
--
--   mtlab plot adatt-fig3
SELECT w.model, w.level, CAST(substr(w.module, 2) AS INTEGER) AS task, w.expert + 1 AS expert,
       count(*) AS n, avg(w.mean) AS weight,
       sqrt(max(sum(w.mean * w.mean) - sum(w.mean) * sum(w.mean) / count(*), 0.0)
            / (count(*) - 1)) AS sd
  FROM v_gate_weights w
  JOIN trial t ON t.id = w.trial_id AND t.status = 'done'
 WHERE w.experiment = :experiment AND w.model IN ('adatt_sp', 'adatt')
   AND w.module GLOB 't[0-9]*'
 GROUP BY w.model, w.level, task, expert
 ORDER BY w.model = 'adatt', w.level, task, expert;
