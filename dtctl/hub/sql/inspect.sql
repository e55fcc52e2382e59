-- The reads behind dtctl top, doctor and workers, shared by both hubs (see dtctl/hub/sql/named.py).
--
-- The SQL is plain enough for SQLite and PostgreSQL to run as written; parameters are named (:name,
-- SQLite's style) and dtctl.hub.sql.inspect.pyformat gives psycopg's spelling of the same text.
-- {live} is the list of live statuses, {work_kinds} the work log's kinds (dtctl.core.status).
-- :now is the clock of visibility and timestamps, :lease_now the clock leases and heartbeats are stored
-- in: the same on PostgreSQL (the server's), the lease clock on SQLite (dtctl/hub/sqlite/clock.py).

-- inbox_depth --
SELECT
    (SELECT COUNT(*) FROM new_events WHERE visible_at <= :now),
    (SELECT COUNT(*) FROM instances AS i JOIN new_events AS e ON e.instance_id = i.instance_id
     WHERE i.lease_expires > :lease_now AND e.visible_at <= :now),
    (SELECT COUNT(*) FROM new_events WHERE visible_at > :now)

-- task_depth --
-- A leased task is always visible (it was visible when leased; a lease given back clears it).
SELECT
    (SELECT COUNT(*) FROM new_tasks WHERE visible_at <= :now),
    (SELECT COUNT(*) FROM new_tasks WHERE lease_expires > :lease_now),
    (SELECT COUNT(*) FROM new_tasks WHERE visible_at > :now)

-- oldest_message --
-- The oldest ready message of an instance nobody holds: walks the visible_at index in order and stops
-- at the first message whose instance is live, unleased and on that message's execution.
SELECT e.instance_id, (SELECT i.name FROM instances AS i WHERE i.instance_id = e.instance_id), e.visible_at
FROM new_events AS e
WHERE e.visible_at <= :now
  AND EXISTS (
      SELECT 1 FROM instances AS i
      WHERE i.instance_id = e.instance_id
        AND (i.lease_expires IS NULL OR i.lease_expires <= :lease_now)
        AND i.status IN {live}
        AND (e.execution_id IS NULL OR e.execution_id = i.execution_id))
ORDER BY e.visible_at
LIMIT 1

-- oldest_task --
SELECT instance_id, name, visible_at FROM new_tasks
WHERE visible_at <= :now AND (lease_expires IS NULL OR lease_expires <= :lease_now)
ORDER BY visible_at
LIMIT 1

-- live_instances --
SELECT status, COUNT(*) FROM instances WHERE status IN {live} GROUP BY status

-- finished_instances --
-- No GROUP BY: that would make the planner walk the status index; this is a completed_at range.
SELECT COALESCE(SUM(CASE WHEN status = 'COMPLETED' THEN 1 ELSE 0 END), 0),
       COALESCE(SUM(CASE WHEN status = 'FAILED' THEN 1 ELSE 0 END), 0),
       COALESCE(SUM(CASE WHEN status = 'TERMINATED' THEN 1 ELSE 0 END), 0)
FROM instances WHERE completed_at >= :since

-- work_counts --
SELECT kind, outcome, COUNT(*) FROM work_log
WHERE kind IN {work_kinds} AND finished_at >= :since
GROUP BY kind, outcome

-- work_samples --
SELECT queued_at, started_at, finished_at FROM work_log
WHERE kind = :kind AND finished_at >= :since
ORDER BY finished_at DESC
LIMIT :limit

-- failures_by_name --
SELECT kind, name, COUNT(*) FROM work_log
WHERE kind IN {work_kinds} AND finished_at >= :since AND outcome = 'failed'
GROUP BY kind, name
ORDER BY COUNT(*) DESC, kind, name
LIMIT :limit

-- backlog_orchestrations --
-- Driven by the ready messages (the visible_at index), not by every live instance; each message looks its
-- instance up by key, as OLDEST_MESSAGE does.
SELECT r.name, COUNT(DISTINCT r.instance_id), MIN(r.visible_at)
FROM (
    SELECT e.instance_id, e.visible_at,
           (SELECT i.name FROM instances AS i WHERE i.instance_id = e.instance_id) AS name
    FROM new_events AS e
    WHERE e.visible_at <= :now
      AND EXISTS (
          SELECT 1 FROM instances AS i
          WHERE i.instance_id = e.instance_id
            AND (i.lease_expires IS NULL OR i.lease_expires <= :lease_now)
            AND i.status IN {live}
            AND (e.execution_id IS NULL OR e.execution_id = i.execution_id))
) AS r
GROUP BY r.name

-- backlog_activities --
SELECT name, COUNT(*), MIN(visible_at) FROM new_tasks
WHERE visible_at <= :now AND (lease_expires IS NULL OR lease_expires <= :lease_now)
GROUP BY name

-- leased_instances --
SELECT lease_owner, COUNT(*) FROM instances WHERE lease_expires > :lease_now GROUP BY lease_owner

-- leased_tasks --
SELECT lease_owner, COUNT(*) FROM new_tasks WHERE lease_expires > :lease_now GROUP BY lease_owner

-- expired_instance_leases --
SELECT instance_id, name, lease_owner, lease_expires, COUNT(*) OVER ()
FROM instances
WHERE lease_expires IS NOT NULL AND lease_expires <= :lease_now
ORDER BY lease_expires, instance_id
LIMIT :limit

-- expired_task_leases --
SELECT instance_id, name, lease_owner, lease_expires, task_id, COUNT(*) OVER ()
FROM new_tasks
WHERE lease_expires IS NOT NULL AND lease_expires <= :lease_now
ORDER BY lease_expires, id
LIMIT :limit

-- poison_messages --
SELECT e.instance_id, i.name, MAX(e.dequeue_count), COUNT(*) OVER ()
FROM new_events AS e JOIN instances AS i ON i.instance_id = e.instance_id
WHERE e.dequeue_count >= :max_dequeue
GROUP BY e.instance_id, i.name
ORDER BY MAX(e.dequeue_count) DESC, e.instance_id
LIMIT :limit

-- poison_tasks --
SELECT instance_id, name, dequeue_count, task_id, COUNT(*) OVER ()
FROM new_tasks
WHERE dequeue_count >= :max_dequeue
ORDER BY dequeue_count DESC, id
LIMIT :limit

-- large_histories --
SELECT instance_id, name, status, history_length, COUNT(*) OVER ()
FROM instances
WHERE status IN {live} AND history_length >= :threshold
ORDER BY history_length DESC, instance_id
LIMIT :limit

-- select_workers --
SELECT worker_id, host, pid, started_at, heartbeat_at, orchestrations, activities, max_orchestrations,
       max_activities, inflight_orchestrations, inflight_activities, extra
FROM workers ORDER BY started_at, worker_id


-- future_stamps --
-- Times dated ahead of the hub's clock (a clock stepped back, or processes whose clocks disagree):
-- heartbeats and leases (:lease_now) past small slacks, instances updated past :now.
SELECT
    (SELECT COUNT(*) FROM workers WHERE heartbeat_at > :lease_now + :heartbeat_slack),
    (SELECT COALESCE(MAX(heartbeat_at), 0) FROM workers),
    (SELECT COUNT(*) FROM instances WHERE lease_expires > :lease_now + :lease_slack)
      + (SELECT COUNT(*) FROM new_tasks WHERE lease_expires > :lease_now + :lease_slack),
    (SELECT COALESCE(MAX(lease_expires), 0) FROM instances),
    (SELECT COALESCE(MAX(lease_expires), 0) FROM new_tasks),
    (SELECT COUNT(*) FROM instances WHERE updated_at > :now + :update_slack),
    (SELECT COALESCE(MAX(updated_at), 0) FROM instances)
