-- adatt-between.sql -- each family's difference from Shared-Bottom per task
-- as the task groups become related (experiments/adatt/between.ini: the
-- MMoE Fig 4 question asked of the fusion families).
--
-- As adatt-table-comparison.sql (final test NE of a binary task, MSE of the
-- regression task, paired with Shared-Bottom on the same dataset, d = 100
-- (v - v_SB) / v_SB), per between-group correlation.  One row per (task,
-- family, between): the pairs n, the mean of d and its standard error
-- sd(d) / sqrt(n) (NULL when n < 2).  Panels: tasks; lines: families.
--
--   mtlab plot adatt-between
WITH tr AS (
    SELECT t.id, t.model, t.data_seed, t.final_step,
           (SELECT p.value FROM param p WHERE p.trial_id = t.id AND p.key = 'data.between')
               AS "between"
      FROM trial t JOIN experiment e ON e.id = t.experiment_id
     WHERE e.name = :experiment AND t.status = 'done'
), v AS (
    SELECT tr.id, tr.model, tr.data_seed, tr."between",
           CAST(substr(m.name, 12) AS INTEGER) AS task,
           ne.value IS NOT NULL AS is_binary, coalesce(ne.value, m.value) AS value
      FROM tr
      JOIN metric m ON m.trial_id = tr.id AND m.step = tr.final_step
                   AND m.name GLOB 'test/loss/t[0-9]*'
      LEFT JOIN metric ne ON ne.trial_id = tr.id AND ne.step = tr.final_step
                         AND ne.name = 'test/ne/' || substr(m.name, 11)
), d AS (
    SELECT v.model, v.task, v."between", v.is_binary,
           100.0 * (v.value - s.value) / s.value AS diff
      FROM v JOIN v s ON s.data_seed = v.data_seed AND s.task = v.task
                     AND s.model = 'shared_bottom'
     WHERE v.model <> 'shared_bottom'
)
SELECT task, CASE WHEN max(is_binary) THEN 'NE' ELSE 'MSE' END AS measure, model, "between",
       count(*) AS n, avg(diff) AS diff_pct,
       sqrt(max(sum(diff * diff) - sum(diff) * sum(diff) / count(*), 0.0)
            / (count(*) - 1) / count(*)) AS se_pct
  FROM d
 GROUP BY task, model, "between"
 ORDER BY task,
          CASE model WHEN 'mmoe' THEN 1 WHEN 'ml_mmoe' THEN 2 WHEN 'ple' THEN 3
          WHEN 'adatt' THEN 4 WHEN 'cross_stitch' THEN 5 WHEN 'adatt_sp' THEN 6 ELSE 7 END,
          model, "between";
