-- How many runs the store holds, by status and workflow type: what says, when a
-- filter of `choreoscope workflows` matched nothing, what the store does hold.
-- Over the window a list covers (workflow_list.sql): runs active since $since, and
-- stuck ones however old.
SELECT status, workflow_type, count(*) AS runs
FROM workflows
WHERE last_activity_at >= $since OR status IN ('stalled', 'in_flight')
GROUP BY ALL;
