-- The SQL of the PostgreSQL hub, one named block per statement (see dtctl/hub/sql/named.py).
--
-- Statements name tables without a schema: each hub connection's search_path is its hub's schema.
-- Each statement has fixed text (lists travel as arrays), so psycopg prepares it once per connection.
--
-- Time: every statement that needs "now" takes %(now)s and uses {hub_now}, which is
-- COALESCE(%(now)s, <server clock>). Production passes NULL, so leases and visibility are judged by
-- the server's clock; only the tests' injectable clock passes a value. {server_now} is the server
-- clock in microseconds, {token} a fresh lease token, {live} the live statuses and {work_kinds} the
-- work log's kinds (dtctl.core.status).

-- select_now --
SELECT {server_now}

-- insert_instances --
-- New PENDING instances, one array per column; an id that exists already is left alone and not
-- returned (a concurrent creator won the race).
INSERT INTO instances (instance_id, execution_id, name, status, input, created_at, updated_at,
                       scheduled_start, parent_instance_id, parent_task_id, parent_execution_id,
                       version, version_key, tags)
SELECT u.instance_id, u.execution_id, u.name, 'PENDING', u.input, u.created_at, u.created_at,
       u.scheduled_start, u.parent_instance_id, u.parent_task_id, u.parent_execution_id,
       u.version, u.version_key, u.tags
FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::bigint[], %s::bigint[], %s::text[],
            %s::int[], %s::text[], %s::text[], %s::text[], %s::text[]) WITH ORDINALITY
     AS u(instance_id, execution_id, name, input, created_at, scheduled_start, parent_instance_id,
          parent_task_id, parent_execution_id, version, version_key, tags, n)
ORDER BY u.n
ON CONFLICT (instance_id) DO NOTHING
RETURNING instance_id

-- insert_child --
-- A plain INSERT (no ON CONFLICT): an id created concurrently by someone else fails the checkpoint item.
INSERT INTO instances (instance_id, execution_id, name, status, input, created_at, updated_at,
                       scheduled_start, parent_instance_id, parent_task_id, parent_execution_id,
                       version, version_key, tags)
VALUES (%s, %s, %s, 'PENDING', %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)

-- insert_tags --
-- The tags of the instances this client created, one row each (instance id, name, value).
INSERT INTO instance_tags (instance_id, name, value)
SELECT * FROM unnest(%s::text[], %s::text[], %s::text[])

-- select_statuses_for_update --
SELECT instance_id, status FROM instances WHERE instance_id = ANY(%s) ORDER BY instance_id FOR UPDATE

-- select_executions --
SELECT instance_id, execution_id FROM instances WHERE instance_id = ANY(%s)

-- select_status --
SELECT status, execution_id, lease_expires FROM instances WHERE instance_id = %s

-- select_status_for_share --
SELECT status, execution_id, lease_expires FROM instances WHERE instance_id = %s FOR SHARE

-- select_status_for_update --
SELECT status, execution_id, lease_expires FROM instances WHERE instance_id = %s FOR UPDATE

-- select_parent --
SELECT parent_instance_id, parent_task_id, parent_execution_id FROM instances WHERE instance_id = %s

-- select_for_checkpoint --
-- The rows of a checkpoint batch, locked in one order (no deadlock between two batches).
SELECT instance_id, lease_token, execution_id, history_length, status, name,
       parent_instance_id, parent_task_id, parent_execution_id, instance_key, execution_no
FROM instances WHERE instance_id = ANY(%s) ORDER BY instance_id FOR UPDATE

-- update_after_episode --
UPDATE instances
SET status = %s, custom_status = %s, output = %s, failure = %s, completed_at = %s, updated_at = %s,
    history_length = history_length + %s, lease_owner = NULL, lease_expires = NULL, lease_token = NULL
WHERE instance_id = %s

-- update_continue_as_new --
UPDATE instances
SET previous_execution_id = execution_id, execution_no = execution_no + 1, execution_id = %s,
    status = 'RUNNING', input = %s, custom_status = %s, output = NULL, failure = NULL,
    completed_at = NULL, updated_at = %s, version = %s, version_key = %s, history_length = 0,
    lease_owner = NULL, lease_expires = NULL, lease_token = NULL
WHERE instance_id = %s

-- terminate_at_once --
UPDATE instances
SET status = 'TERMINATED', output = %s, completed_at = %s, updated_at = %s,
    lease_owner = NULL, lease_expires = NULL, lease_token = NULL
WHERE instance_id = %s

-- select_descendants --
WITH RECURSIVE descendants(id) AS (
    SELECT instance_id FROM instances WHERE parent_instance_id = %s
    UNION
    SELECT i.instance_id FROM instances AS i JOIN descendants AS d ON i.parent_instance_id = d.id
)
SELECT id FROM descendants

-- insert_events --
INSERT INTO new_events (instance_id, execution_id, kind, name, task_id, payload, visible_at, trace_context)
SELECT u.instance_id, u.execution_id, u.kind, u.name, u.task_id, u.payload, u.visible_at, u.trace_context
FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::int[], %s::text[], %s::bigint[], %s::text[])
     WITH ORDINALITY AS u(instance_id, execution_id, kind, name, task_id, payload, visible_at, trace_context, n)
ORDER BY u.n

-- has_pending_terminate --
SELECT 1 FROM new_events WHERE instance_id = %s AND kind = 'execution_terminated' LIMIT 1

-- lease_orchestrations --
-- One statement leases up to ``limit`` instances and takes their visible messages: oldest visible
-- message first, instances locked with SKIP LOCKED (a row another worker is leasing right now is
-- passed over, not waited for), a fresh token per instance, the dequeue count of each taken message
-- incremented. Messages of an instance come back as extra rows (LEFT JOIN: none are possible when
-- another transaction deleted them in between). The pick does not compare a message's execution tag:
-- that keeps the plan an ordered index scan that stops at the limit; an instance whose only messages
-- are stale (an execution that is gone) is released at once, its stale messages deleted.
WITH clock AS MATERIALIZED (SELECT {hub_now} AS now),
leased AS (
    UPDATE instances AS i
    SET lease_owner = %(owner)s, lease_expires = clock.now + %(lease_us)s, lease_token = {token}
    FROM clock
    WHERE i.instance_id IN (
        SELECT c.instance_id
        FROM new_events AS e JOIN instances AS c ON c.instance_id = e.instance_id
        WHERE e.visible_at <= (SELECT now FROM clock)
          AND (c.lease_expires IS NULL OR c.lease_expires <= (SELECT now FROM clock))
          AND c.status IN {live}
          AND (%(names)s::text[] IS NULL OR c.name = ANY(%(names)s::text[]))
          AND (%(vmin)s::text IS NULL OR c.version_key >= %(vmin)s::text)
          AND (%(vmax)s::text IS NULL OR c.version_key <= %(vmax)s::text)
        ORDER BY e.visible_at, e.id
        LIMIT %(limit)s
        FOR UPDATE OF c SKIP LOCKED
    )
    RETURNING i.instance_id, i.execution_id, i.name, i.status, i.history_length, i.lease_token,
              i.lease_expires, clock.now AS now, i.version
),
taken AS (
    UPDATE new_events AS e SET dequeue_count = e.dequeue_count + 1
    FROM leased AS l
    WHERE e.instance_id = l.instance_id AND e.visible_at <= l.now
    RETURNING e.instance_id, e.id, e.execution_id, e.kind, e.payload, e.dequeue_count, e.trace_context
)
SELECT l.instance_id, l.execution_id, l.name, l.status, l.history_length, l.lease_token, l.lease_expires,
       l.now, t.id, t.execution_id, t.kind, t.payload, t.dequeue_count, t.trace_context, l.version
FROM leased AS l LEFT JOIN taken AS t ON t.instance_id = l.instance_id
ORDER BY l.instance_id, t.id

-- delete_events_by_id --
-- Stale messages a lease found (of an execution that is gone).
DELETE FROM new_events WHERE id = ANY(%s::bigint[])

-- delete_messages --
DELETE FROM new_events WHERE instance_id = %s AND id = ANY(%s::bigint[])

-- delete_inbox --
DELETE FROM new_events WHERE instance_id = %s

-- delete_timer_fired --
-- A cancelled timer (CancelTimer): its pending timer_fired must never wake the instance.
DELETE FROM new_events
WHERE instance_id = %s AND execution_id = %s AND kind = 'timer_fired' AND task_id = %s

-- delete_other_execution_events --
DELETE FROM new_events WHERE instance_id = %s AND execution_id IS NOT NULL AND execution_id <> %s

-- select_pending_events --
-- At continue-as-new: what is still queued for the instance, to queue again behind the carried-over events.
SELECT instance_id, execution_id, kind, name, task_id, payload, visible_at, trace_context
FROM new_events WHERE instance_id = %s ORDER BY id

-- select_inbox --
SELECT id, payload, dequeue_count, trace_context FROM new_events WHERE instance_id = %s ORDER BY id

-- release_instance --
WITH released AS (
    UPDATE instances SET lease_owner = NULL, lease_expires = NULL, lease_token = NULL
    WHERE instance_id = %(instance_id)s AND lease_token = %(token)s
    RETURNING 1
)
SELECT pg_notify(%(channel)s, '') FROM released

-- release_instances --
UPDATE instances SET lease_owner = NULL, lease_expires = NULL, lease_token = NULL
WHERE (instance_id, lease_token) IN (SELECT * FROM unnest(%s::text[], %s::text[]))

-- renew_instances --
UPDATE instances SET lease_expires = {hub_now} + %(lease_us)s
WHERE (instance_id, lease_token) IN (SELECT * FROM unnest(%(ids)s::text[], %(tokens)s::text[]))
RETURNING instance_id

-- release_owner_instances --
UPDATE instances SET lease_owner = NULL, lease_expires = NULL, lease_token = NULL
WHERE lease_expires IS NOT NULL AND lease_owner = %s

-- notify --
SELECT pg_notify(%s, '')

-- insert_history --
INSERT INTO history (instance_key, execution_no, sequence, payload)
SELECT %s, %s, u.sequence, u.payload FROM unnest(%s::int[], %s::text[]) AS u(sequence, payload)

-- load_history --
SELECT h.sequence, h.payload
FROM instances AS i
JOIN history AS h ON h.instance_key = i.instance_key AND h.execution_no = CASE %(execution_id)s::text
    WHEN i.execution_id THEN i.execution_no WHEN i.previous_execution_id THEN i.execution_no - 1 END
WHERE i.instance_id = %(instance_id)s
ORDER BY h.sequence

-- load_history_page --
-- One page of it (`history show --limit/--after`, a followed history's new events).
SELECT h.sequence, h.payload
FROM instances AS i
JOIN history AS h ON h.instance_key = i.instance_key AND h.execution_no = CASE %(execution_id)s::text
    WHEN i.execution_id THEN i.execution_no WHEN i.previous_execution_id THEN i.execution_no - 1 END
WHERE i.instance_id = %(instance_id)s AND h.sequence > %(after)s
ORDER BY h.sequence
LIMIT %(limit)s

-- delete_older_history --
DELETE FROM history WHERE instance_key = %s AND execution_no < %s

-- insert_tasks --
INSERT INTO new_tasks (instance_id, execution_id, task_id, name, input, visible_at)
SELECT %s, %s, u.task_id, u.name, u.input, %s
FROM unnest(%s::int[], %s::text[], %s::text[]) WITH ORDINALITY AS u(task_id, name, input, n)
ORDER BY u.n

-- lease_activities --
WITH clock AS MATERIALIZED (SELECT {hub_now} AS now)
UPDATE new_tasks AS t
SET lease_owner = %(owner)s, lease_expires = clock.now + %(lease_us)s, lease_token = %(token)s,
    dequeue_count = t.dequeue_count + 1, leased_at = clock.now
FROM clock
WHERE t.id IN (
    SELECT id FROM new_tasks
    WHERE visible_at <= (SELECT now FROM clock)
      AND (lease_expires IS NULL OR lease_expires <= (SELECT now FROM clock))
      AND (%(names)s::text[] IS NULL OR name = ANY(%(names)s::text[]))
    ORDER BY id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
RETURNING t.id, t.instance_id, t.execution_id, t.task_id, t.name, t.input, t.lease_token, t.lease_expires,
          t.dequeue_count, t.lease_owner, t.visible_at

-- complete_activities --
-- Fenced by token: a row whose lease was taken over (or that is gone) is not deleted, its result is
-- not stored. A stored result reaches the inbox only while its execution is current and live.
WITH r AS (
    SELECT * FROM unnest(%(ids)s::bigint[], %(tokens)s::text[], %(instance_ids)s::text[],
                         %(execution_ids)s::text[], %(kinds)s::text[], %(task_ids)s::int[],
                         %(payloads)s::text[]) WITH ORDINALITY
         AS r(id, token, instance_id, execution_id, kind, task_id, payload, n)
),
done AS (
    DELETE FROM new_tasks AS t USING r WHERE t.id = r.id AND t.lease_token = r.token
    RETURNING t.id, t.leased_at
),
delivered AS (
    INSERT INTO new_events (instance_id, execution_id, kind, name, task_id, payload, visible_at)
    SELECT r.instance_id, r.execution_id, r.kind, NULL, r.task_id, r.payload, %(now)s
    FROM r JOIN done ON done.id = r.id
    JOIN instances AS i ON i.instance_id = r.instance_id AND i.execution_id = r.execution_id
                       AND i.status IN {live}
    ORDER BY r.n
    RETURNING 1
)
SELECT id, leased_at FROM done

-- delete_tasks_of --
DELETE FROM new_tasks WHERE instance_id = %s

-- abandon_task --
UPDATE new_tasks SET lease_owner = NULL, lease_expires = NULL, lease_token = NULL,
       visible_at = {hub_now} + %(backoff_us)s
WHERE id = %(id)s AND lease_token = %(token)s

-- renew_tasks --
UPDATE new_tasks SET lease_expires = {hub_now} + %(lease_us)s
WHERE (id, lease_token) IN (SELECT * FROM unnest(%(ids)s::bigint[], %(tokens)s::text[]))
RETURNING id

-- release_owner_tasks --
UPDATE new_tasks SET lease_owner = NULL, lease_expires = NULL, lease_token = NULL WHERE lease_owner = %s

-- select_tasks_of --
SELECT id, instance_id, execution_id, task_id, name, input, lease_token, lease_expires,
          dequeue_count, lease_owner, visible_at
FROM new_tasks WHERE instance_id = %s ORDER BY id

-- scale_inputs --
SELECT * FROM scale_inputs(%s::bigint)

-- remove_instances_1 --
-- Removal (replace, purge): the remove_instances_N statements, in order, remove every trace of
-- the instances: their history (all executions), inboxes, activity tasks, rows and tags.
DELETE FROM history WHERE instance_key IN
    (SELECT instance_key FROM instances WHERE instance_id = ANY(%s::text[]))

-- remove_instances_2 --
DELETE FROM new_events WHERE instance_id = ANY(%s::text[])

-- remove_instances_3 --
DELETE FROM new_tasks WHERE instance_id = ANY(%s::text[])

-- remove_instances_4 --
DELETE FROM instances WHERE instance_id = ANY(%s::text[])

-- remove_instances_5 --
DELETE FROM instance_tags WHERE instance_id = ANY(%s::text[])

-- remove_instances_6 --
-- The entity locks of removed instances go with them (their unlocks may never come): what waited for
-- them runs again (unparked), the locks are released, and their lock requests still travelling along
-- their lock sets are dropped before they take a lock for a holder that no longer exists.
UPDATE entity_inbox SET parked = false
WHERE parked AND entity_id IN (SELECT entity_id FROM entities WHERE lock_instance_id = ANY(%s::text[]))

-- remove_instances_7 --
UPDATE entities SET lock_instance_id = NULL, lock_execution_id = NULL, lock_section_id = NULL
WHERE lock_instance_id = ANY(%s::text[])

-- remove_instances_8 --
DELETE FROM entity_inbox WHERE kind = 'lock' AND sender_instance_id = ANY(%s::text[])

-- upsert_worker --
INSERT INTO workers (worker_id, host, pid, started_at, heartbeat_at, orchestrations, activities,
                     max_orchestrations, max_activities, inflight_orchestrations, inflight_activities, extra)
VALUES (%s, %s, %s, %s, COALESCE(%s::bigint, {server_now}), %s, %s, %s, %s, %s, %s, %s)
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
DELETE FROM workers WHERE heartbeat_at < COALESCE(%s::bigint, {server_now}) - %s

-- delete_worker --
DELETE FROM workers WHERE worker_id = %s

-- next_visible --
-- When a lease call could next find work (for an idle worker's wait): the earliest visible_at of an
-- inbox message of a live, unleased instance, and of an unleased activity task. Same shape as the
-- lease pick, so the same ordered index scans serve it; it takes no locks.
WITH clock AS MATERIALIZED (SELECT {hub_now} AS now)
SELECT
    (SELECT e.visible_at
     FROM new_events AS e JOIN instances AS c ON c.instance_id = e.instance_id
     WHERE %(orchestrations)s
       AND (c.lease_expires IS NULL OR c.lease_expires <= (SELECT now FROM clock))
       AND c.status IN {live}
       AND (e.execution_id IS NULL OR e.execution_id = c.execution_id)
       AND (%(onames)s::text[] IS NULL OR c.name = ANY(%(onames)s::text[]))
       AND (%(vmin)s::text IS NULL OR c.version_key >= %(vmin)s::text)
       AND (%(vmax)s::text IS NULL OR c.version_key <= %(vmax)s::text)
     ORDER BY e.visible_at, e.id
     LIMIT 1),
    (SELECT t.visible_at
     FROM new_tasks AS t
     WHERE %(activities)s
       AND (t.lease_expires IS NULL OR t.lease_expires <= (SELECT now FROM clock))
       AND (%(anames)s::text[] IS NULL OR t.name = ANY(%(anames)s::text[]))
     ORDER BY t.visible_at
     LIMIT 1)

-- log_work --
INSERT INTO work_log (kind, name, outcome, queued_at, started_at, finished_at)
SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::bigint[], %s::bigint[], %s::bigint[])

-- prune_work_log --
-- Rows another writer is pruning at the same moment are skipped, never waited for.
DELETE FROM work_log WHERE id IN (
    SELECT id FROM work_log
    WHERE kind IN {work_kinds} AND finished_at < %s
    FOR UPDATE SKIP LOCKED
)

-- server_facts --
SELECT current_setting('server_version_num')::int, current_setting('server_version'),
       current_setting('fsync'), current_setting('synchronous_commit'),
       current_setting('full_page_writes'), current_setting('data_checksums'),
       current_user, current_database(),
       has_schema_privilege(%(schema)s, 'CREATE'),
       has_database_privilege(current_database(), 'CREATE'),
       (SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid())

-- tables_without_dml --
-- Hub tables the connected role cannot read and write (workers need SELECT/INSERT/UPDATE/DELETE on all).
SELECT c.relname FROM pg_class AS c
WHERE c.relnamespace = %(schema)s::regnamespace AND c.relkind = 'r'
  AND NOT (has_table_privilege(c.oid, 'SELECT') AND has_table_privilege(c.oid, 'INSERT')
           AND has_table_privilege(c.oid, 'UPDATE') AND has_table_privilege(c.oid, 'DELETE'))
ORDER BY c.relname

-- set_trace_context --
-- Only for instances started by a traced caller (dtctl.observe): the column stays NULL otherwise.
UPDATE instances SET trace_context = %s WHERE instance_id = %s

-- select_trace_record --
SELECT instance_id, execution_id, created_at, trace_context, parent_instance_id, parent_execution_id
FROM instances WHERE instance_id = %s

-- ensure_entities --
-- Entities: the first message sent to an entity creates its row. DO NOTHING takes no
-- lock on an existing row, so sending never waits for a worker that has the entity leased.
INSERT INTO entities (entity_id, name, key, created_at, updated_at)
SELECT u.entity_id, u.name, u.key, u.created_at, u.created_at
FROM unnest(%s::text[], %s::text[], %s::text[], %s::bigint[]) AS u(entity_id, name, key, created_at)
ORDER BY u.entity_id
ON CONFLICT (entity_id) DO NOTHING

-- insert_entity_messages --
INSERT INTO entity_inbox (entity_id, kind, operation, input, sender_instance_id, sender_execution_id,
                          sender_task_id, critical_section_id, lock_set, lock_position, created_at,
                          visible_at, trace_context)
SELECT u.entity_id, u.kind, u.operation, u.input, u.sender_instance_id, u.sender_execution_id,
       u.sender_task_id, u.critical_section_id, u.lock_set, u.lock_position, u.created_at, u.visible_at,
       u.trace_context
FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::int[], %s::text[],
            %s::text[], %s::int[], %s::bigint[], %s::bigint[], %s::text[]) WITH ORDINALITY
     AS u(entity_id, kind, operation, input, sender_instance_id, sender_execution_id, sender_task_id,
          critical_section_id, lock_set, lock_position, created_at, visible_at, trace_context, n)
ORDER BY u.n

-- lease_entities --
-- Unleased entities with a ready (visible, not parked) message, locked with SKIP LOCKED, each with a
-- fresh token; their messages are taken by take_entity_messages in the same transaction.
WITH clock AS MATERIALIZED (SELECT {hub_now} AS now),
ready AS (
    SELECT e.entity_id FROM entities AS e
    WHERE e.entity_id IN (SELECT m.entity_id FROM entity_inbox AS m
                          WHERE m.visible_at <= (SELECT now FROM clock) AND NOT m.parked)
      AND (e.lease_expires IS NULL OR e.lease_expires <= (SELECT now FROM clock))
      AND (%(names)s::text[] IS NULL OR e.name = ANY(%(names)s::text[]))
    LIMIT %(limit)s
    FOR UPDATE OF e SKIP LOCKED
)
UPDATE entities AS e
SET lease_owner = %(owner)s, lease_expires = clock.now + %(lease_us)s, lease_token = {token},
    leased_at = clock.now, dequeue_count = e.dequeue_count + 1
FROM ready, clock
WHERE e.entity_id = ready.entity_id
RETURNING e.entity_id, e.name, e.key, e.state, e.lock_instance_id, e.lock_execution_id, e.lock_section_id,
          e.dequeue_count, e.lease_token, e.lease_expires, e.leased_at

-- take_entity_messages --
-- FIFO per entity, at most ``lim`` each (NULL: every visible message, for a locked entity).
SELECT w.entity_id, t.id, t.kind, t.operation, t.input, t.sender_instance_id, t.sender_execution_id,
       t.sender_task_id, t.critical_section_id, t.lock_set, t.lock_position, t.trace_context
FROM unnest(%(ids)s::text[], %(limits)s::int[]) AS w(entity_id, lim)
CROSS JOIN LATERAL (
    SELECT m.* FROM entity_inbox AS m
    WHERE m.entity_id = w.entity_id AND m.visible_at <= %(at)s
    ORDER BY m.id LIMIT w.lim
) AS t
ORDER BY w.entity_id, t.id

-- next_visible_entity --
WITH clock AS MATERIALIZED (SELECT {hub_now} AS now)
SELECT m.visible_at
FROM entity_inbox AS m JOIN entities AS e ON e.entity_id = m.entity_id
WHERE NOT m.parked
  AND (e.lease_expires IS NULL OR e.lease_expires <= (SELECT now FROM clock))
  AND (%(names)s::text[] IS NULL OR e.name = ANY(%(names)s::text[]))
ORDER BY m.visible_at
LIMIT 1

-- store_entity --
-- Fenced by the lease token; last modified moves only when the batch applied something.
UPDATE entities
SET state = %(state)s, lock_instance_id = %(lock_instance_id)s, lock_execution_id = %(lock_execution_id)s,
    lock_section_id = %(lock_section_id)s,
    updated_at = CASE WHEN %(applied)s THEN %(now)s ELSE updated_at END,
    lease_owner = NULL, lease_expires = NULL, lease_token = NULL, leased_at = NULL, dequeue_count = 0
WHERE entity_id = %(entity_id)s AND lease_token = %(token)s
RETURNING 1

-- delete_entity_messages --
DELETE FROM entity_inbox WHERE entity_id = %s AND id = ANY(%s)

-- park_entity_messages --
UPDATE entity_inbox SET parked = true WHERE entity_id = %s AND id = ANY(%s)

-- unpark_entity_messages --
UPDATE entity_inbox SET parked = false WHERE entity_id = %s AND parked

-- insert_responses_if_live --
-- Entity responses and lock grants reach an orchestration inbox only while the execution that asked
-- is current and live (as activity results).
INSERT INTO new_events (instance_id, execution_id, kind, name, task_id, payload, visible_at)
SELECT u.instance_id, u.execution_id, u.kind, NULL, u.task_id, u.payload, u.visible_at
FROM unnest(%s::text[], %s::text[], %s::text[], %s::int[], %s::text[], %s::bigint[]) WITH ORDINALITY
     AS u(instance_id, execution_id, kind, task_id, payload, visible_at, n)
JOIN instances AS i ON i.instance_id = u.instance_id
                   AND (u.execution_id IS NULL OR i.execution_id = u.execution_id)
                   AND i.status IN {live}
ORDER BY u.n

-- release_entity --
UPDATE entities SET lease_owner = NULL, lease_expires = NULL, lease_token = NULL, leased_at = NULL
WHERE entity_id = %s AND lease_token = %s

-- renew_entities --
UPDATE entities SET lease_expires = {hub_now} + %(lease_us)s
WHERE (entity_id, lease_token) IN (SELECT * FROM unnest(%(ids)s::text[], %(tokens)s::text[]))
RETURNING entity_id

-- release_owner_entities --
UPDATE entities SET lease_owner = NULL, lease_expires = NULL, lease_token = NULL, leased_at = NULL
WHERE lease_expires IS NOT NULL AND lease_owner = %s

-- select_entity_messages --
SELECT id, kind, operation, input, sender_instance_id, sender_execution_id, sender_task_id,
       critical_section_id, lock_set, lock_position, visible_at, parked
FROM entity_inbox WHERE entity_id = %s ORDER BY id

-- orphaned_entity_locks --
-- Locks whose holder is gone, finished, or on another execution (its unlock will never come).
SELECT e.entity_id
FROM entities AS e
LEFT JOIN instances AS i ON i.instance_id = e.lock_instance_id
WHERE e.lock_instance_id IS NOT NULL
  AND (i.instance_id IS NULL OR i.status NOT IN {live}
       OR (e.lock_execution_id IS NOT NULL AND i.execution_id <> e.lock_execution_id))
ORDER BY e.entity_id
FOR UPDATE OF e

-- release_entity_locks --
UPDATE entities SET lock_instance_id = NULL, lock_execution_id = NULL, lock_section_id = NULL
WHERE entity_id = ANY(%s)

-- unpark_entities --
UPDATE entity_inbox SET parked = false WHERE entity_id = ANY(%s) AND parked

-- empty_entities --
-- No state, no lock, nothing in the inbox, not leased: nothing would be lost by removing the row.
SELECT e.entity_id
FROM entities AS e
WHERE e.state IS NULL AND e.lock_instance_id IS NULL
  AND (e.lease_expires IS NULL OR e.lease_expires <= {hub_now})
  AND NOT EXISTS (SELECT 1 FROM entity_inbox AS m WHERE m.entity_id = e.entity_id)
ORDER BY e.entity_id
FOR UPDATE OF e SKIP LOCKED

-- delete_entities --
DELETE FROM entities WHERE entity_id = ANY(%s)
