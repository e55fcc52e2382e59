-- The hot-path SQL of the SQLite hub, one named block per statement (see dtctl/hub/sql/named.py).
--
-- Each statement has fixed text so the sqlite3 statement cache prepares it once per connection.
-- Name filters are passed as one JSON array (json_each) for the same reason: a varying IN (?, ?, ...)
-- list would be a new statement per list length. {live} is the list of live statuses, {work_kinds}
-- the work log's kinds (dtctl.core.status). Parameters are positional (?) or named (:name).

-- insert_instance --
INSERT INTO instances (instance_id, execution_id, name, status, input, created_at, updated_at,
                       scheduled_start, parent_instance_id, parent_task_id, parent_execution_id,
                       version, version_key, tags)
VALUES (?, ?, ?, 'PENDING', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)

-- insert_tags --
INSERT INTO instance_tags (instance_id, name, value) VALUES (?, ?, ?)

-- select_status --
SELECT status, execution_id, lease_expires FROM instances WHERE instance_id = ?

-- select_parent --
SELECT parent_instance_id, parent_task_id, parent_execution_id FROM instances WHERE instance_id = ?

-- select_for_checkpoint --
SELECT lease_token, execution_id, history_length, status, name,
       parent_instance_id, parent_task_id, parent_execution_id, instance_key, execution_no
FROM instances WHERE instance_id = ?

-- update_after_episode --
UPDATE instances
SET status = ?, custom_status = ?, output = ?, failure = ?, completed_at = ?, updated_at = ?,
    history_length = history_length + ?, lease_owner = NULL, lease_expires = NULL, lease_token = NULL
WHERE instance_id = ?

-- update_continue_as_new --
UPDATE instances
SET previous_execution_id = execution_id, execution_no = execution_no + 1, execution_id = ?,
    status = 'RUNNING', input = ?, custom_status = ?, output = NULL, failure = NULL,
    completed_at = NULL, updated_at = ?, version = ?, version_key = ?, history_length = 0,
    lease_owner = NULL, lease_expires = NULL, lease_token = NULL
WHERE instance_id = ?

-- terminate_at_once --
UPDATE instances
SET status = 'TERMINATED', output = ?, completed_at = ?, updated_at = ?,
    lease_owner = NULL, lease_expires = NULL, lease_token = NULL
WHERE instance_id = ?

-- select_descendants --
WITH RECURSIVE descendants(id) AS (
    SELECT instance_id FROM instances WHERE parent_instance_id = ?
    UNION
    SELECT i.instance_id FROM instances AS i JOIN descendants AS d ON i.parent_instance_id = d.id
)
SELECT id FROM descendants

-- insert_event --
INSERT INTO new_events (instance_id, execution_id, kind, name, task_id, payload, visible_at, trace_context)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)

-- insert_result_if_live --
-- The result of an activity goes to the inbox only while its execution is current and live.
INSERT INTO new_events (instance_id, execution_id, kind, name, task_id, payload, visible_at)
SELECT :instance_id, :execution_id, :kind, NULL, :task_id, :payload, :now
FROM instances
WHERE instance_id = :instance_id AND execution_id = :execution_id AND status IN {live}

-- has_pending_terminate --
SELECT 1 FROM new_events WHERE instance_id = ? AND kind = 'execution_terminated' LIMIT 1

-- pick_instances --
-- Visibility: a durable timer is due by the wall clock (:now) only; every other message once either
-- clock reaches it (:visible_by is the later of :now and :lease_now), so a wall clock stepped back does
-- not hide work that was ready before the step (dtctl/hub/sqlite/clock.py).
-- Oldest visible events first (covering index), joined to leasable instances. Stale events (tagged
-- with another execution) never make an instance leasable. The caller reads rows until it has
-- ``limit`` distinct instances, so the scan stops early. CROSS JOIN and ``+i.status`` pin the plan
-- (scan the event index in time order, look each instance up by key) whatever the table statistics.
-- :vmin / :vmax bound the version key (a worker that rejects versions it does not match; NULL: open).
SELECT e.instance_id
FROM new_events AS e
CROSS JOIN instances AS i ON i.instance_id = e.instance_id
WHERE e.visible_at <= :visible_by
  AND (e.visible_at <= :now OR e.kind <> 'timer_fired')
  AND (i.lease_expires IS NULL OR i.lease_expires <= :lease_now)
  AND +i.status IN {live}
  AND (e.execution_id IS NULL OR e.execution_id = i.execution_id)
  AND (:names IS NULL OR i.name IN (SELECT value FROM json_each(:names)))
  AND (:vmin IS NULL OR i.version_key >= :vmin)
  AND (:vmax IS NULL OR i.version_key <= :vmax)
ORDER BY e.visible_at

-- next_visible_event --
-- When PICK_INSTANCES will next find something (the idle worker's wait): the same filters, in the same
-- index order, without the time bound; the first row that qualifies is the answer.
SELECT e.visible_at
FROM new_events AS e
CROSS JOIN instances AS i ON i.instance_id = e.instance_id
WHERE (i.lease_expires IS NULL OR i.lease_expires <= :lease_now)
  AND +i.status IN {live}
  AND (e.execution_id IS NULL OR e.execution_id = i.execution_id)
  AND (:names IS NULL OR i.name IN (SELECT value FROM json_each(:names)))
  AND (:vmin IS NULL OR i.version_key >= :vmin)
  AND (:vmax IS NULL OR i.version_key <= :vmax)
ORDER BY e.visible_at
LIMIT 1

-- lease_instance --
UPDATE instances SET lease_owner = ?, lease_expires = ?, lease_token = ?
WHERE instance_id = ?
RETURNING execution_id, name, status, history_length, version

-- take_messages --
-- The messages PICK_INSTANCES counts as visible (its visibility rule).
UPDATE new_events SET dequeue_count = dequeue_count + 1
WHERE instance_id = :instance_id AND visible_at <= :visible_by
  AND (visible_at <= :now OR kind <> 'timer_fired')
RETURNING id, execution_id, kind, payload, dequeue_count, trace_context

-- delete_message --
DELETE FROM new_events WHERE id = ? AND instance_id = ?

-- delete_inbox --
DELETE FROM new_events WHERE instance_id = ?

-- delete_timer_fired --
-- A cancelled timer (CancelTimer): its pending timer_fired must never wake the instance.
DELETE FROM new_events
WHERE instance_id = ? AND execution_id = ? AND kind = 'timer_fired' AND task_id = ?

-- delete_other_execution_events --
DELETE FROM new_events WHERE instance_id = ? AND execution_id IS NOT NULL AND execution_id <> ?

-- select_pending_events --
-- At continue-as-new: what is still queued for the instance, to queue again behind the carried-over events.
SELECT instance_id, execution_id, kind, name, task_id, payload, visible_at, trace_context
FROM new_events WHERE instance_id = ? ORDER BY id

-- select_inbox --
SELECT id, payload, dequeue_count, trace_context FROM new_events WHERE instance_id = ? ORDER BY id

-- release_instance --
UPDATE instances SET lease_owner = NULL, lease_expires = NULL, lease_token = NULL
WHERE instance_id = ? AND lease_token = ?

-- renew_instance --
UPDATE instances SET lease_expires = ? WHERE instance_id = ? AND lease_token = ?

-- release_owner_instances --
UPDATE instances SET lease_owner = NULL, lease_expires = NULL, lease_token = NULL
WHERE lease_expires IS NOT NULL AND lease_owner = ?

-- insert_history --
INSERT INTO history (instance_key, execution_no, sequence, payload) VALUES (?, ?, ?, ?)

-- load_history --
-- History of an execution named by its id: the current one or the one before it (the only two kept).
SELECT h.sequence, h.payload
FROM instances AS i
JOIN history AS h ON h.instance_key = i.instance_key AND h.execution_no = CASE :execution_id
    WHEN i.execution_id THEN i.execution_no WHEN i.previous_execution_id THEN i.execution_no - 1 END
WHERE i.instance_id = :instance_id
ORDER BY h.sequence

-- load_history_page --
-- One page of it (`history show --limit/--after`, a followed history's new events).
SELECT h.sequence, h.payload
FROM instances AS i
JOIN history AS h ON h.instance_key = i.instance_key AND h.execution_no = CASE :execution_id
    WHEN i.execution_id THEN i.execution_no WHEN i.previous_execution_id THEN i.execution_no - 1 END
WHERE i.instance_id = :instance_id AND h.sequence > :after
ORDER BY h.sequence
LIMIT :limit

-- delete_older_history --
-- At continue-as-new: drop the executions before the one that is ending.
DELETE FROM history WHERE instance_key = ? AND execution_no < ?

-- insert_task --
INSERT INTO new_tasks (instance_id, execution_id, task_id, name, input, visible_at) VALUES (?, ?, ?, ?, ?, ?)

-- lease_tasks --
-- :now is the wall clock (visibility), :lease_now the lease clock (lease expiry, dtctl/hub/sqlite/clock.py).
-- FIFO by id. ``+visible_at`` keeps the planner on the primary key: an index on visible_at would
-- need a sort of every visible row to honour ORDER BY id.
UPDATE new_tasks
SET lease_owner = :owner, lease_expires = :expires, lease_token = :token, dequeue_count = dequeue_count + 1,
    leased_at = :now
WHERE id IN (
    SELECT id FROM new_tasks
    WHERE +visible_at <= :visible_by
      AND (lease_expires IS NULL OR lease_expires <= :lease_now)
      AND (:names IS NULL OR name IN (SELECT value FROM json_each(:names)))
    ORDER BY id
    LIMIT :limit
)
RETURNING id, instance_id, execution_id, task_id, name, input, lease_token, lease_expires, dequeue_count,
          lease_owner, visible_at

-- next_visible_task --
-- When LEASE_TASKS will next find something: unleased tasks by visible time (new_tasks_by_visible).
SELECT visible_at FROM new_tasks
WHERE (lease_expires IS NULL OR lease_expires <= :lease_now)
  AND (:names IS NULL OR name IN (SELECT value FROM json_each(:names)))
ORDER BY visible_at
LIMIT 1

-- delete_leased_task --
-- Returns when the lease was taken, for the work log (dtctl top latency).
DELETE FROM new_tasks WHERE id = ? AND lease_token = ? RETURNING leased_at

-- delete_tasks_of --
DELETE FROM new_tasks WHERE instance_id = ?

-- abandon_task --
UPDATE new_tasks SET lease_owner = NULL, lease_expires = NULL, lease_token = NULL, visible_at = ?
WHERE id = ? AND lease_token = ?

-- renew_task --
UPDATE new_tasks SET lease_expires = ? WHERE id = ? AND lease_token = ?

-- release_owner_tasks --
UPDATE new_tasks SET lease_owner = NULL, lease_expires = NULL, lease_token = NULL WHERE lease_owner = ?

-- select_tasks_of --
SELECT id, instance_id, execution_id, task_id, name, input, lease_token, lease_expires, dequeue_count,
       lease_owner, visible_at
FROM new_tasks WHERE instance_id = ? ORDER BY id

-- scale_metrics --
SELECT
    (SELECT COUNT(*) FROM (
         SELECT instance_id FROM new_events WHERE visible_at <= :now
         UNION
         SELECT instance_id FROM instances WHERE lease_expires IS NOT NULL AND lease_expires > :lease_now
     ) AS u JOIN instances AS i ON i.instance_id = u.instance_id
     WHERE i.status IN {live})
    -- an entity with work counts as an orchestration (durabletask-mssql: an entity is an instance)
    + (SELECT COUNT(*) FROM (
         SELECT entity_id FROM entity_inbox WHERE visible_at <= :now AND parked = 0
         UNION
         SELECT entity_id FROM entities WHERE lease_expires IS NOT NULL AND lease_expires > :lease_now
     )),
    (SELECT COUNT(*) FROM new_tasks WHERE visible_at <= :now),
    (SELECT COUNT(*) FROM instances WHERE lease_expires IS NOT NULL AND lease_expires > :lease_now),
    (SELECT COUNT(*) FROM (SELECT DISTINCT instance_id FROM new_events WHERE visible_at <= :now) AS v
     JOIN instances AS i ON i.instance_id = v.instance_id WHERE i.status IN {live}),
    (SELECT COUNT(*) FROM new_events WHERE visible_at > :now AND kind = 'timer_fired'),
    (SELECT COUNT(*) FROM new_tasks)

-- remove_instance_1 --
-- Removal (replace, purge): the remove_instance_N statements, in order, remove every trace of
-- one instance: its history (all executions), inbox, activity tasks, row and tags.
DELETE FROM history WHERE instance_key = (SELECT instance_key FROM instances WHERE instance_id = ?)

-- remove_instance_2 --
DELETE FROM new_events WHERE instance_id = ?

-- remove_instance_3 --
DELETE FROM new_tasks WHERE instance_id = ?

-- remove_instance_4 --
DELETE FROM instances WHERE instance_id = ?

-- remove_instance_5 --
DELETE FROM instance_tags WHERE instance_id = ?

-- remove_instance_6 --
-- The entity locks of a removed instance go with it (its unlock may never come): what waited for
-- them runs again (unparked), the locks are released, and its lock requests still travelling along
-- their lock sets are dropped before they take a lock for a holder that no longer exists.
UPDATE entity_inbox SET parked = 0
WHERE parked = 1 AND entity_id IN (SELECT entity_id FROM entities WHERE lock_instance_id = ?)

-- remove_instance_7 --
UPDATE entities SET lock_instance_id = NULL, lock_execution_id = NULL, lock_section_id = NULL
WHERE lock_instance_id = ?

-- remove_instance_8 --
DELETE FROM entity_inbox WHERE kind = 'lock' AND sender_instance_id = ?

-- upsert_worker --
INSERT INTO workers (worker_id, host, pid, started_at, heartbeat_at, orchestrations, activities,
                     max_orchestrations, max_activities, inflight_orchestrations, inflight_activities, extra)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (worker_id) DO UPDATE SET
    host = excluded.host, pid = excluded.pid, heartbeat_at = excluded.heartbeat_at,
    orchestrations = excluded.orchestrations, activities = excluded.activities,
    max_orchestrations = excluded.max_orchestrations, max_activities = excluded.max_activities,
    inflight_orchestrations = excluded.inflight_orchestrations,
    inflight_activities = excluded.inflight_activities, extra = excluded.extra

-- select_workers --
SELECT worker_id, host, pid, started_at, heartbeat_at, orchestrations, activities, max_orchestrations,
       max_activities, inflight_orchestrations, inflight_activities, extra
FROM workers ORDER BY started_at, worker_id

-- prune_lost_workers --
-- Lost workers' rows are kept for a while as evidence of the crash, then dropped.
DELETE FROM workers WHERE heartbeat_at < ?

-- delete_worker --
DELETE FROM workers WHERE worker_id = ?

-- log_work --
-- The work log (dtctl top), written on the hot path in the transaction that commits the work.
INSERT INTO work_log (kind, name, outcome, queued_at, started_at, finished_at) VALUES (?, ?, ?, ?, ?, ?)

-- prune_work_log --
DELETE FROM work_log WHERE kind IN {work_kinds} AND finished_at < :before

-- set_trace_context --
-- Only for instances started by a traced caller (dtctl.observe): the column stays NULL otherwise.
UPDATE instances SET trace_context = ? WHERE instance_id = ?

-- select_trace_record --
SELECT instance_id, execution_id, created_at, trace_context, parent_instance_id, parent_execution_id
FROM instances WHERE instance_id = ?

-- ensure_entity --
-- Entities: the first message sent to an entity creates its row.
INSERT INTO entities (entity_id, name, key, created_at, updated_at) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (entity_id) DO NOTHING

-- insert_entity_message --
INSERT INTO entity_inbox (entity_id, kind, operation, input, sender_instance_id, sender_execution_id,
                          sender_task_id, critical_section_id, lock_set, lock_position, created_at,
                          visible_at, trace_context)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)

-- pick_entities --
-- Unleased entities with a ready (visible, not parked) message, oldest first; the caller reads rows
-- until it has ``limit`` distinct entities. Same plan and clocks as pick_instances: a delayed signal
-- (visible after it was sent) is due by the wall clock only, like a durable timer; every other message
-- once either clock reaches it; leases expire by the lease clock.
SELECT m.entity_id
FROM entity_inbox AS m
CROSS JOIN entities AS e ON e.entity_id = m.entity_id
WHERE m.visible_at <= :visible_by AND (m.visible_at <= :now OR m.visible_at <= m.created_at)
  AND m.parked = 0
  AND (e.lease_expires IS NULL OR e.lease_expires <= :lease_now)
  AND (:names IS NULL OR e.name IN (SELECT value FROM json_each(:names)))
ORDER BY m.visible_at

-- next_visible_entity --
SELECT m.visible_at
FROM entity_inbox AS m
CROSS JOIN entities AS e ON e.entity_id = m.entity_id
WHERE m.parked = 0
  AND (e.lease_expires IS NULL OR e.lease_expires <= :lease_now)
  AND (:names IS NULL OR e.name IN (SELECT value FROM json_each(:names)))
ORDER BY m.visible_at
LIMIT 1

-- lease_entity --
UPDATE entities
SET lease_owner = ?, lease_expires = ?, lease_token = ?, leased_at = ?, dequeue_count = dequeue_count + 1
WHERE entity_id = ?
RETURNING name, key, state, lock_instance_id, lock_execution_id, lock_section_id, dequeue_count

-- take_entity_messages --
-- FIFO; LIMIT -1 (a locked entity) takes every visible message (visibility as in pick_entities).
SELECT id, kind, operation, input, sender_instance_id, sender_execution_id, sender_task_id,
       critical_section_id, lock_set, lock_position, trace_context
FROM entity_inbox
WHERE entity_id = :entity_id
  AND visible_at <= :visible_by AND (visible_at <= :now OR visible_at <= created_at)
ORDER BY id LIMIT :limit

-- store_entity --
-- Fenced by the lease token; last modified moves only when the batch applied something.
UPDATE entities
SET state = :state, lock_instance_id = :lock_instance_id, lock_execution_id = :lock_execution_id,
    lock_section_id = :lock_section_id, updated_at = CASE WHEN :applied THEN :now ELSE updated_at END,
    lease_owner = NULL, lease_expires = NULL, lease_token = NULL, leased_at = NULL, dequeue_count = 0
WHERE entity_id = :entity_id AND lease_token = :token

-- delete_entity_message --
DELETE FROM entity_inbox WHERE id = ? AND entity_id = ?

-- park_entity_message --
UPDATE entity_inbox SET parked = 1 WHERE id = ? AND entity_id = ?

-- unpark_entity_messages --
UPDATE entity_inbox SET parked = 0 WHERE entity_id = ? AND parked = 1

-- release_entity --
UPDATE entities SET lease_owner = NULL, lease_expires = NULL, lease_token = NULL, leased_at = NULL
WHERE entity_id = ? AND lease_token = ?

-- renew_entity --
UPDATE entities SET lease_expires = ? WHERE entity_id = ? AND lease_token = ?

-- release_owner_entities --
UPDATE entities SET lease_owner = NULL, lease_expires = NULL, lease_token = NULL, leased_at = NULL
WHERE lease_expires IS NOT NULL AND lease_owner = ?

-- select_entity_messages --
SELECT id, kind, operation, input, sender_instance_id, sender_execution_id, sender_task_id,
       critical_section_id, lock_set, lock_position, visible_at, parked
FROM entity_inbox WHERE entity_id = ? ORDER BY id

-- orphaned_entity_locks --
-- Locks whose holder is gone, finished, or on another execution (its unlock will never come).
SELECT e.entity_id
FROM entities AS e
LEFT JOIN instances AS i ON i.instance_id = e.lock_instance_id
WHERE e.lock_instance_id IS NOT NULL
  AND (i.instance_id IS NULL OR i.status NOT IN {live}
       OR (e.lock_execution_id IS NOT NULL AND i.execution_id <> e.lock_execution_id))
ORDER BY e.entity_id

-- release_entity_lock --
UPDATE entities SET lock_instance_id = NULL, lock_execution_id = NULL, lock_section_id = NULL
WHERE entity_id = ?

-- empty_entities --
-- No state, no lock, nothing in the inbox, not leased: nothing would be lost by removing the row.
SELECT e.entity_id
FROM entities AS e
WHERE e.state IS NULL AND e.lock_instance_id IS NULL
  AND (e.lease_expires IS NULL OR e.lease_expires <= :lease_now)
  AND NOT EXISTS (SELECT 1 FROM entity_inbox AS m WHERE m.entity_id = e.entity_id)
ORDER BY e.entity_id

-- delete_entity --
DELETE FROM entities WHERE entity_id = ?
