-- fig3-group-blocks.sql -- AdaTT paper (Li et al., KDD 2023) Fig 3: the
-- effective expert weights show the task groups ("a clear distinction
-- between the consumption and engagement task groups").
--
-- claim: AdaTT-sp's tasks put more weight on their group-mates' experts than on the other group's
-- statistic: mean_diff
--   per trial of adatt_sp and fusion level, from the gate records (kind
--   'weights', test-set means): a = the mean effective weight a task puts on
--   the native experts of the OTHER tasks of its group, b = on the experts of
--   tasks of other groups (one expert per task: expert j is task j's);
--   statistic mean(a) - mean(b) over the repeats; holds when > 0.  Groups
--   come from the trial's data.groups ("2 2": tasks 1-2, 3-4); --metric
--   does not matter.
-- condition: "between=B" (between sweep only) "level=L".
-- Rows (the claims contract): condition, repeat, grp, value.
, sizes (trial_id, rest, first, grp) AS (  -- data.groups parsed: group grp starts at task first
    SELECT f.trial_id, p.value || ' ', 1, 0
      FROM final f JOIN param p ON p.trial_id = f.trial_id AND p.key = 'data.groups'
     WHERE f.model = 'adatt_sp'
    UNION ALL
    SELECT trial_id, substr(rest, instr(rest, ' ') + 1),
           first + CAST(substr(rest, 1, instr(rest, ' ') - 1) AS INTEGER), grp + 1
      FROM sizes WHERE rest <> ''
), task_group AS (
    SELECT s.trial_id, k.value AS task, max(s.grp) AS grp
      FROM sizes s JOIN generate_k k ON k.value >= s.first
     GROUP BY s.trial_id, k.value
), generate_k (value) AS (
    SELECT 1 UNION ALL SELECT value + 1 FROM generate_k WHERE value < 16
), w AS (
    SELECT f.trial_id, f.repeat, g.level,
           (SELECT p.value FROM param p WHERE p.trial_id = f.trial_id AND p.key = 'data.between')
               AS btw,
           CAST(substr(g.owner, 2) AS INTEGER) AS task, g.expert + 1 AS expert, g.mean
      FROM final f JOIN gate g ON g.trial_id = f.trial_id AND g.kind = 'weights'
     WHERE f.model = 'adatt_sp' AND g.owner GLOB 't[0-9]*'
), cell AS (
    SELECT w.trial_id, w.repeat, w.level, w.btw,
           avg(CASE WHEN gt.grp = ge.grp AND w.task <> w.expert THEN w.mean END) AS within,
           avg(CASE WHEN gt.grp <> ge.grp THEN w.mean END) AS across
      FROM w
      JOIN task_group gt ON gt.trial_id = w.trial_id AND gt.task = w.task
      JOIN task_group ge ON ge.trial_id = w.trial_id AND ge.task = w.expert
     GROUP BY w.trial_id, w.repeat, w.level, w.btw
)
SELECT trim(coalesce('between=' || btw || ' ', '') || 'level=' || level) AS condition, repeat,
       'a' AS grp, within AS value
  FROM cell
UNION ALL
SELECT trim(coalesce('between=' || btw || ' ', '') || 'level=' || level), repeat, 'b', across
  FROM cell;
