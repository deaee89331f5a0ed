-- 011-route-recovery.sql -- schema version 11: the route views
-- (sql/routes/recovery.sql: v_route_task_group, v_route_use,
-- v_route_utilisation, v_route_overlap, v_route_recovery), created with the
-- other views on every upgrade, and the metric model/route_recovery that
-- store_finish writes at a trial's final step from v_route_recovery.  No
-- table changes: a trial finished before this version has no such metric
-- row, and its score is read from v_route_recovery.
SELECT 1;
