"""The SQL of the PostgreSQL hub, as module constants.

Statements name tables without a schema: each hub connection's ``search_path`` is its hub's schema.
Each statement has fixed text (lists travel as arrays), so psycopg prepares it once per connection.

Time: every statement that needs "now" takes ``%(now)s`` and uses ``COALESCE(%(now)s, <server clock>)``.
Production passes NULL, so leases and visibility are judged by the server's clock; only the tests'
injectable clock passes a value.
"""

from __future__ import annotations

SERVER_NOW = "(extract(epoch FROM clock_timestamp()) * 1000000)::bigint"
NOW = f"COALESCE(%(now)s::bigint, {SERVER_NOW})"
LIVE = "('PENDING', 'RUNNING', 'SUSPENDED')"
TOKEN = "replace(gen_random_uuid()::text, '-', '')"

SELECT_NOW = f"SELECT {SERVER_NOW}"

# --- instances ---------------------------------------------------------------------------------------

INSTANCE_HEAD = (
    "instance_id, execution_id, name, status, created_at, updated_at, completed_at, scheduled_start"
)
INSTANCE_TAIL = (
    "failure, parent_instance_id, parent_task_id, lease_owner, lease_expires, history_length,"
    " previous_execution_id"
)
INSTANCE_COLUMNS = f"{INSTANCE_HEAD}, input, output, custom_status, {INSTANCE_TAIL}"
INSTANCE_COLUMNS_NO_PAYLOADS = f"{INSTANCE_HEAD}, NULL, NULL, NULL, {INSTANCE_TAIL}"

# New PENDING instances, one array per column; an id that exists already is left alone and not
# returned (a concurrent creator won the race).
INSERT_INSTANCES = """
INSERT INTO instances (instance_id, execution_id, name, status, input, created_at, updated_at,
                       scheduled_start, parent_instance_id, parent_task_id, parent_execution_id)
SELECT u.instance_id, u.execution_id, u.name, 'PENDING', u.input, u.created_at, u.created_at,
       u.scheduled_start, u.parent_instance_id, u.parent_task_id, u.parent_execution_id
FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::bigint[], %s::bigint[], %s::text[],
            %s::int[], %s::text[]) WITH ORDINALITY
     AS u(instance_id, execution_id, name, input, created_at, scheduled_start, parent_instance_id,
          parent_task_id, parent_execution_id, n)
ORDER BY u.n
ON CONFLICT (instance_id) DO NOTHING
RETURNING instance_id
"""

SELECT_STATUSES_FOR_UPDATE = """
SELECT instance_id, status FROM instances WHERE instance_id = ANY(%s) ORDER BY instance_id FOR UPDATE
"""

SELECT_EXECUTIONS = "SELECT instance_id, execution_id FROM instances WHERE instance_id = ANY(%s)"

SELECT_STATUS = "SELECT status, execution_id, lease_expires FROM instances WHERE instance_id = %s"
SELECT_STATUS_FOR_SHARE = SELECT_STATUS + " FOR SHARE"
SELECT_STATUS_FOR_UPDATE = SELECT_STATUS + " FOR UPDATE"

SELECT_PARENT = """
SELECT parent_instance_id, parent_task_id, parent_execution_id FROM instances WHERE instance_id = %s
"""

# The rows of a checkpoint batch, locked in one order (no deadlock between two batches).
SELECT_FOR_CHECKPOINT = """
SELECT instance_id, lease_token, execution_id, history_length, status, name,
       parent_instance_id, parent_task_id, parent_execution_id, instance_key, execution_no
FROM instances WHERE instance_id = ANY(%s) ORDER BY instance_id FOR UPDATE
"""

UPDATE_AFTER_EPISODE = """
UPDATE instances
SET status = %s, custom_status = %s, output = %s, failure = %s, completed_at = %s, updated_at = %s,
    history_length = history_length + %s, lease_owner = NULL, lease_expires = NULL, lease_token = NULL
WHERE instance_id = %s
"""

UPDATE_CONTINUE_AS_NEW = """
UPDATE instances
SET previous_execution_id = execution_id, execution_no = execution_no + 1, execution_id = %s,
    status = 'RUNNING', input = %s, custom_status = %s, output = NULL, failure = NULL,
    completed_at = NULL, updated_at = %s, history_length = 0,
    lease_owner = NULL, lease_expires = NULL, lease_token = NULL
WHERE instance_id = %s
"""

TERMINATE_AT_ONCE = """
UPDATE instances
SET status = 'TERMINATED', output = %s, completed_at = %s, updated_at = %s,
    lease_owner = NULL, lease_expires = NULL, lease_token = NULL
WHERE instance_id = %s
"""

SELECT_DESCENDANTS = """
WITH RECURSIVE descendants(id) AS (
    SELECT instance_id FROM instances WHERE parent_instance_id = %s
    UNION
    SELECT i.instance_id FROM instances AS i JOIN descendants AS d ON i.parent_instance_id = d.id
)
SELECT id FROM descendants
"""

# --- the orchestration inbox -------------------------------------------------------------------------

INSERT_EVENTS = """
INSERT INTO new_events (instance_id, execution_id, kind, name, task_id, payload, visible_at)
SELECT u.instance_id, u.execution_id, u.kind, u.name, u.task_id, u.payload, u.visible_at
FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::int[], %s::text[], %s::bigint[])
     WITH ORDINALITY AS u(instance_id, execution_id, kind, name, task_id, payload, visible_at, n)
ORDER BY u.n
"""

HAS_PENDING_TERMINATE = (
    "SELECT 1 FROM new_events WHERE instance_id = %s AND kind = 'execution_terminated' LIMIT 1"
)

# One statement leases up to ``limit`` instances and takes their visible messages: oldest visible
# message first, instances locked with SKIP LOCKED (a row another worker is leasing right now is
# passed over, not waited for), a fresh token per instance, the dequeue count of each taken message
# incremented. Messages of an instance come back as extra rows (LEFT JOIN: none are possible when
# another transaction deleted them in between). The pick does not compare a message's execution tag:
# that keeps the plan an ordered index scan that stops at the limit; an instance whose only messages
# are stale (an execution that is gone) is released at once, its stale messages deleted.
LEASE_ORCHESTRATIONS = f"""
WITH clock AS MATERIALIZED (SELECT {NOW} AS now),
leased AS (
    UPDATE instances AS i
    SET lease_owner = %(owner)s, lease_expires = clock.now + %(lease_us)s, lease_token = {TOKEN}
    FROM clock
    WHERE i.instance_id IN (
        SELECT c.instance_id
        FROM new_events AS e JOIN instances AS c ON c.instance_id = e.instance_id
        WHERE e.visible_at <= (SELECT now FROM clock)
          AND (c.lease_expires IS NULL OR c.lease_expires <= (SELECT now FROM clock))
          AND c.status IN {LIVE}
          AND (%(names)s::text[] IS NULL OR c.name = ANY(%(names)s::text[]))
        ORDER BY e.visible_at, e.id
        LIMIT %(limit)s
        FOR UPDATE OF c SKIP LOCKED
    )
    RETURNING i.instance_id, i.execution_id, i.name, i.status, i.history_length, i.lease_token,
              i.lease_expires, clock.now AS now
),
taken AS (
    UPDATE new_events AS e SET dequeue_count = e.dequeue_count + 1
    FROM leased AS l
    WHERE e.instance_id = l.instance_id AND e.visible_at <= l.now
    RETURNING e.instance_id, e.id, e.execution_id, e.kind, e.payload, e.dequeue_count
)
SELECT l.instance_id, l.execution_id, l.name, l.status, l.history_length, l.lease_token, l.lease_expires,
       l.now, t.id, t.execution_id, t.kind, t.payload, t.dequeue_count
FROM leased AS l LEFT JOIN taken AS t ON t.instance_id = l.instance_id
ORDER BY l.instance_id, t.id
"""

DELETE_MESSAGES = "DELETE FROM new_events WHERE instance_id = %s AND id = ANY(%s::bigint[])"
DELETE_INBOX = "DELETE FROM new_events WHERE instance_id = %s"
# A cancelled timer: its pending timer_fired must never wake the instance (CancelTimer).
DELETE_TIMER_FIRED = (
    "DELETE FROM new_events WHERE instance_id = %s AND execution_id = %s"
    " AND kind = 'timer_fired' AND task_id = %s"
)
DELETE_OTHER_EXECUTION_EVENTS = (
    "DELETE FROM new_events WHERE instance_id = %s AND execution_id IS NOT NULL AND execution_id <> %s"
)

SELECT_INBOX = "SELECT id, payload, dequeue_count FROM new_events WHERE instance_id = %s ORDER BY id"

RELEASE_INSTANCE = """
WITH released AS (
    UPDATE instances SET lease_owner = NULL, lease_expires = NULL, lease_token = NULL
    WHERE instance_id = %(instance_id)s AND lease_token = %(token)s
    RETURNING 1
)
SELECT pg_notify(%(channel)s, '') FROM released
"""

RELEASE_INSTANCES = """
UPDATE instances SET lease_owner = NULL, lease_expires = NULL, lease_token = NULL
WHERE (instance_id, lease_token) IN (SELECT * FROM unnest(%s::text[], %s::text[]))
"""

RENEW_INSTANCES = f"""
UPDATE instances SET lease_expires = {NOW} + %(lease_us)s
WHERE (instance_id, lease_token) IN (SELECT * FROM unnest(%(ids)s::text[], %(tokens)s::text[]))
RETURNING instance_id
"""

RELEASE_OWNER_INSTANCES = """
UPDATE instances SET lease_owner = NULL, lease_expires = NULL, lease_token = NULL
WHERE lease_expires IS NOT NULL AND lease_owner = %s
"""

NOTIFY = "SELECT pg_notify(%s, '')"

# --- history -----------------------------------------------------------------------------------------

INSERT_HISTORY = """
INSERT INTO history (instance_key, execution_no, sequence, payload)
SELECT %s, %s, u.sequence, u.payload FROM unnest(%s::int[], %s::text[]) AS u(sequence, payload)
"""

LOAD_HISTORY = """
SELECT h.sequence, h.payload
FROM instances AS i
JOIN history AS h ON h.instance_key = i.instance_key AND h.execution_no = CASE %(execution_id)s::text
    WHEN i.execution_id THEN i.execution_no WHEN i.previous_execution_id THEN i.execution_no - 1 END
WHERE i.instance_id = %(instance_id)s
ORDER BY h.sequence
"""

# One page of it (`history show --limit/--after`, a followed history's new events).
LOAD_HISTORY_PAGE = """
SELECT h.sequence, h.payload
FROM instances AS i
JOIN history AS h ON h.instance_key = i.instance_key AND h.execution_no = CASE %(execution_id)s::text
    WHEN i.execution_id THEN i.execution_no WHEN i.previous_execution_id THEN i.execution_no - 1 END
WHERE i.instance_id = %(instance_id)s AND h.sequence > %(after)s
ORDER BY h.sequence
LIMIT %(limit)s
"""

DELETE_OLDER_HISTORY = "DELETE FROM history WHERE instance_key = %s AND execution_no < %s"

# --- the activity queue ------------------------------------------------------------------------------

INSERT_TASKS = """
INSERT INTO new_tasks (instance_id, execution_id, task_id, name, input, visible_at)
SELECT %s, %s, u.task_id, u.name, u.input, %s
FROM unnest(%s::int[], %s::text[], %s::text[]) WITH ORDINALITY AS u(task_id, name, input, n)
ORDER BY u.n
"""

TASK_COLUMNS = """id, instance_id, execution_id, task_id, name, input, lease_token, lease_expires,
          dequeue_count, lease_owner, visible_at"""

LEASE_ACTIVITIES = f"""
WITH clock AS MATERIALIZED (SELECT {NOW} AS now)
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
"""

# Fenced by token: a row whose lease was taken over (or that is gone) is not deleted, its result is
# not stored. A stored result reaches the inbox only while its execution is current and live.
COMPLETE_ACTIVITIES = f"""
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
                       AND i.status IN {LIVE}
    ORDER BY r.n
    RETURNING 1
)
SELECT id, leased_at FROM done
"""

DELETE_TASKS_OF = "DELETE FROM new_tasks WHERE instance_id = %s"

ABANDON_TASK = f"""
UPDATE new_tasks SET lease_owner = NULL, lease_expires = NULL, lease_token = NULL,
       visible_at = {NOW} + %(backoff_us)s
WHERE id = %(id)s AND lease_token = %(token)s
"""

RENEW_TASKS = f"""
UPDATE new_tasks SET lease_expires = {NOW} + %(lease_us)s
WHERE (id, lease_token) IN (SELECT * FROM unnest(%(ids)s::bigint[], %(tokens)s::text[]))
RETURNING id
"""

RELEASE_OWNER_TASKS = """
UPDATE new_tasks SET lease_owner = NULL, lease_expires = NULL, lease_token = NULL WHERE lease_owner = %s
"""

SELECT_TASKS_OF = f"SELECT {TASK_COLUMNS} FROM new_tasks WHERE instance_id = %s ORDER BY id"

# --- scale metrics -----------------------------------------------------------------------------------

SCALE_INPUTS = "SELECT * FROM scale_inputs(%s::bigint)"

# --- removal (replace, purge) ------------------------------------------------------------------------

REMOVE_INSTANCES = (
    "DELETE FROM history WHERE instance_key IN "
    "(SELECT instance_key FROM instances WHERE instance_id = ANY(%s::text[]))",
    "DELETE FROM new_events WHERE instance_id = ANY(%s::text[])",
    "DELETE FROM new_tasks WHERE instance_id = ANY(%s::text[])",
    "DELETE FROM instances WHERE instance_id = ANY(%s::text[])",
)

# --- workers -----------------------------------------------------------------------------------------

UPSERT_WORKER = f"""
INSERT INTO workers (worker_id, host, pid, started_at, heartbeat_at, orchestrations, activities,
                     max_orchestrations, max_activities, inflight_orchestrations, inflight_activities, extra)
VALUES (%s, %s, %s, %s, COALESCE(%s::bigint, {SERVER_NOW}), %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (worker_id) DO UPDATE SET
    host = excluded.host, pid = excluded.pid, heartbeat_at = excluded.heartbeat_at,
    orchestrations = excluded.orchestrations, activities = excluded.activities,
    max_orchestrations = excluded.max_orchestrations, max_activities = excluded.max_activities,
    inflight_orchestrations = excluded.inflight_orchestrations,
    inflight_activities = excluded.inflight_activities, extra = excluded.extra
"""

SELECT_WORKERS = """
SELECT worker_id, host, pid, started_at, heartbeat_at, orchestrations, activities, max_orchestrations,
       max_activities, inflight_orchestrations, inflight_activities, extra
FROM workers ORDER BY started_at, worker_id
"""

DELETE_WORKER = "DELETE FROM workers WHERE worker_id = %s"
PRUNE_LOST_WORKERS = f"DELETE FROM workers WHERE heartbeat_at < COALESCE(%s::bigint, {SERVER_NOW}) - %s"

# When a lease call could next find work (for an idle worker's wait): the earliest visible_at of an
# inbox message of a live, unleased instance, and of an unleased activity task. Same shape as the
# lease pick, so the same ordered index scans serve it; it takes no locks.
NEXT_VISIBLE = f"""
WITH clock AS MATERIALIZED (SELECT {NOW} AS now)
SELECT
    (SELECT e.visible_at
     FROM new_events AS e JOIN instances AS c ON c.instance_id = e.instance_id
     WHERE %(orchestrations)s
       AND (c.lease_expires IS NULL OR c.lease_expires <= (SELECT now FROM clock))
       AND c.status IN {LIVE}
       AND (e.execution_id IS NULL OR e.execution_id = c.execution_id)
       AND (%(onames)s::text[] IS NULL OR c.name = ANY(%(onames)s::text[]))
     ORDER BY e.visible_at, e.id
     LIMIT 1),
    (SELECT t.visible_at
     FROM new_tasks AS t
     WHERE %(activities)s
       AND (t.lease_expires IS NULL OR t.lease_expires <= (SELECT now FROM clock))
       AND (%(anames)s::text[] IS NULL OR t.name = ANY(%(anames)s::text[]))
     ORDER BY t.visible_at
     LIMIT 1)
"""

# --- the work log (dtctl top): written in the transaction that commits the work ------------------------

LOG_WORK = """
INSERT INTO work_log (kind, name, outcome, queued_at, started_at, finished_at)
SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::bigint[], %s::bigint[], %s::bigint[])
"""

# Rows another writer is pruning at the same moment are skipped, never waited for.
PRUNE_WORK_LOG = """
DELETE FROM work_log WHERE id IN (
    SELECT id FROM work_log
    WHERE kind IN ('activity', 'orchestration') AND finished_at < %s
    FOR UPDATE SKIP LOCKED
)
"""

# --- doctor: the server and what the connected role may do in the hub's schema ------------------------

SERVER_FACTS = """
SELECT current_setting('server_version_num')::int, current_setting('server_version'),
       current_setting('fsync'), current_setting('synchronous_commit'),
       current_setting('full_page_writes'), current_setting('data_checksums'),
       current_user, current_database(),
       has_schema_privilege(%(schema)s, 'CREATE'),
       has_database_privilege(current_database(), 'CREATE'),
       (SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid())
"""

# Hub tables the connected role cannot read and write (workers need SELECT/INSERT/UPDATE/DELETE on all).
TABLES_WITHOUT_DML = """
SELECT c.relname FROM pg_class AS c
WHERE c.relnamespace = %(schema)s::regnamespace AND c.relkind = 'r'
  AND NOT (has_table_privilege(c.oid, 'SELECT') AND has_table_privilege(c.oid, 'INSERT')
           AND has_table_privilege(c.oid, 'UPDATE') AND has_table_privilege(c.oid, 'DELETE'))
ORDER BY c.relname
"""
