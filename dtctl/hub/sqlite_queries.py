"""The hot-path SQL of the SQLite hub, as module constants.

Each statement has fixed text so the ``sqlite3`` statement cache prepares it once per connection.
Name filters are passed as one JSON array (``json_each``) for the same reason: a varying ``IN (?, ?, …)``
list would be a new statement per list length.
"""

from __future__ import annotations

LIVE = "('PENDING', 'RUNNING', 'SUSPENDED')"
TERMINAL = "('COMPLETED', 'FAILED', 'TERMINATED')"

# --- instances ---------------------------------------------------------------------------------------

INSERT_INSTANCE = """
INSERT INTO instances (instance_id, execution_id, name, status, input, created_at, updated_at,
                       scheduled_start, parent_instance_id, parent_task_id, parent_execution_id)
VALUES (?, ?, ?, 'PENDING', ?, ?, ?, ?, ?, ?, ?)
"""

SELECT_STATUS = "SELECT status, execution_id, lease_expires FROM instances WHERE instance_id = ?"

SELECT_FOR_CHECKPOINT = """
SELECT lease_token, execution_id, history_length, status, name,
       parent_instance_id, parent_task_id, parent_execution_id, instance_key, execution_no
FROM instances WHERE instance_id = ?
"""

UPDATE_AFTER_EPISODE = """
UPDATE instances
SET status = ?, custom_status = ?, output = ?, failure = ?, completed_at = ?, updated_at = ?,
    history_length = history_length + ?, lease_owner = NULL, lease_expires = NULL, lease_token = NULL
WHERE instance_id = ?
"""

UPDATE_CONTINUE_AS_NEW = """
UPDATE instances
SET previous_execution_id = execution_id, execution_no = execution_no + 1, execution_id = ?,
    status = 'RUNNING', input = ?, custom_status = ?, output = NULL, failure = NULL,
    completed_at = NULL, updated_at = ?, history_length = 0,
    lease_owner = NULL, lease_expires = NULL, lease_token = NULL
WHERE instance_id = ?
"""

TERMINATE_AT_ONCE = """
UPDATE instances
SET status = 'TERMINATED', output = ?, completed_at = ?, updated_at = ?,
    lease_owner = NULL, lease_expires = NULL, lease_token = NULL
WHERE instance_id = ?
"""

SELECT_DESCENDANTS = """
WITH RECURSIVE descendants(id) AS (
    SELECT instance_id FROM instances WHERE parent_instance_id = ?
    UNION
    SELECT i.instance_id FROM instances AS i JOIN descendants AS d ON i.parent_instance_id = d.id
)
SELECT id FROM descendants
"""

# --- the orchestration inbox -------------------------------------------------------------------------

INSERT_EVENT = """
INSERT INTO new_events (instance_id, execution_id, kind, name, task_id, payload, visible_at)
VALUES (?, ?, ?, ?, ?, ?, ?)
"""

# The result of an activity goes to the inbox only while its execution is current and live.
INSERT_RESULT_IF_LIVE = f"""
INSERT INTO new_events (instance_id, execution_id, kind, name, task_id, payload, visible_at)
SELECT :instance_id, :execution_id, :kind, NULL, :task_id, :payload, :now
FROM instances
WHERE instance_id = :instance_id AND execution_id = :execution_id AND status IN {LIVE}
"""

HAS_PENDING_TERMINATE = (
    "SELECT 1 FROM new_events WHERE instance_id = ? AND kind = 'execution_terminated' LIMIT 1"
)

# Oldest visible events first (covering index), joined to leasable instances. Stale events (tagged
# with another execution) never make an instance leasable. The caller reads rows until it has
# ``limit`` distinct instances, so the scan stops early. CROSS JOIN and ``+i.status`` pin the plan
# (scan the event index in time order, look each instance up by key) whatever the table statistics.
PICK_INSTANCES = f"""
SELECT e.instance_id
FROM new_events AS e
CROSS JOIN instances AS i ON i.instance_id = e.instance_id
WHERE e.visible_at <= :now
  AND (i.lease_expires IS NULL OR i.lease_expires <= :now)
  AND +i.status IN {LIVE}
  AND (e.execution_id IS NULL OR e.execution_id = i.execution_id)
  AND (:names IS NULL OR i.name IN (SELECT value FROM json_each(:names)))
ORDER BY e.visible_at
"""

# When PICK_INSTANCES will next find something (the idle worker's wait): the same filters, in the same
# index order, without the time bound; the first row that qualifies is the answer.
NEXT_VISIBLE_EVENT = f"""
SELECT e.visible_at
FROM new_events AS e
CROSS JOIN instances AS i ON i.instance_id = e.instance_id
WHERE (i.lease_expires IS NULL OR i.lease_expires <= :now)
  AND +i.status IN {LIVE}
  AND (e.execution_id IS NULL OR e.execution_id = i.execution_id)
  AND (:names IS NULL OR i.name IN (SELECT value FROM json_each(:names)))
ORDER BY e.visible_at
LIMIT 1
"""

LEASE_INSTANCE = """
UPDATE instances SET lease_owner = ?, lease_expires = ?, lease_token = ?
WHERE instance_id = ?
RETURNING execution_id, name, status, history_length
"""

TAKE_MESSAGES = """
UPDATE new_events SET dequeue_count = dequeue_count + 1
WHERE instance_id = ? AND visible_at <= ?
RETURNING id, execution_id, kind, payload, dequeue_count
"""

DELETE_MESSAGE = "DELETE FROM new_events WHERE id = ? AND instance_id = ?"
DELETE_INBOX = "DELETE FROM new_events WHERE instance_id = ?"
# A cancelled timer: its pending timer_fired must never wake the instance (CancelTimer).
DELETE_TIMER_FIRED = (
    "DELETE FROM new_events WHERE instance_id = ? AND execution_id = ?"
    " AND kind = 'timer_fired' AND task_id = ?"
)
DELETE_OTHER_EXECUTION_EVENTS = (
    "DELETE FROM new_events WHERE instance_id = ? AND execution_id IS NOT NULL AND execution_id <> ?"
)

SELECT_INBOX = """
SELECT id, payload, dequeue_count FROM new_events WHERE instance_id = ? ORDER BY id
"""

RELEASE_INSTANCE = """
UPDATE instances SET lease_owner = NULL, lease_expires = NULL, lease_token = NULL
WHERE instance_id = ? AND lease_token = ?
"""

RENEW_INSTANCE = "UPDATE instances SET lease_expires = ? WHERE instance_id = ? AND lease_token = ?"

RELEASE_OWNER_INSTANCES = """
UPDATE instances SET lease_owner = NULL, lease_expires = NULL, lease_token = NULL
WHERE lease_expires IS NOT NULL AND lease_owner = ?
"""

# --- history -----------------------------------------------------------------------------------------

INSERT_HISTORY = """
INSERT INTO history (instance_key, execution_no, sequence, payload) VALUES (?, ?, ?, ?)
"""

# History of an execution named by its id: the current one or the one before it (the only two kept).
LOAD_HISTORY = """
SELECT h.sequence, h.payload
FROM instances AS i
JOIN history AS h ON h.instance_key = i.instance_key AND h.execution_no = CASE :execution_id
    WHEN i.execution_id THEN i.execution_no WHEN i.previous_execution_id THEN i.execution_no - 1 END
WHERE i.instance_id = :instance_id
ORDER BY h.sequence
"""

# One page of it (`history show --limit/--after`, a followed history's new events).
LOAD_HISTORY_PAGE = """
SELECT h.sequence, h.payload
FROM instances AS i
JOIN history AS h ON h.instance_key = i.instance_key AND h.execution_no = CASE :execution_id
    WHEN i.execution_id THEN i.execution_no WHEN i.previous_execution_id THEN i.execution_no - 1 END
WHERE i.instance_id = :instance_id AND h.sequence > :after
ORDER BY h.sequence
LIMIT :limit
"""

# At continue-as-new: drop the executions before the one that is ending.
DELETE_OLDER_HISTORY = "DELETE FROM history WHERE instance_key = ? AND execution_no < ?"

# --- the activity queue ------------------------------------------------------------------------------

INSERT_TASK = """
INSERT INTO new_tasks (instance_id, execution_id, task_id, name, input, visible_at) VALUES (?, ?, ?, ?, ?, ?)
"""

# FIFO by id. ``+visible_at`` keeps the planner on the primary key: an index on visible_at would
# need a sort of every visible row to honour ORDER BY id.
LEASE_TASKS = """
UPDATE new_tasks
SET lease_owner = :owner, lease_expires = :expires, lease_token = :token, dequeue_count = dequeue_count + 1,
    leased_at = :now
WHERE id IN (
    SELECT id FROM new_tasks
    WHERE +visible_at <= :now
      AND (lease_expires IS NULL OR lease_expires <= :now)
      AND (:names IS NULL OR name IN (SELECT value FROM json_each(:names)))
    ORDER BY id
    LIMIT :limit
)
RETURNING id, instance_id, execution_id, task_id, name, input, lease_token, lease_expires, dequeue_count,
          lease_owner, visible_at
"""

# When LEASE_TASKS will next find something: unleased tasks by visible time (new_tasks_by_visible).
NEXT_VISIBLE_TASK = """
SELECT visible_at FROM new_tasks
WHERE (lease_expires IS NULL OR lease_expires <= :now)
  AND (:names IS NULL OR name IN (SELECT value FROM json_each(:names)))
ORDER BY visible_at
LIMIT 1
"""

# Returns when the lease was taken, for the work log (dtctl top latency).
DELETE_LEASED_TASK = "DELETE FROM new_tasks WHERE id = ? AND lease_token = ? RETURNING leased_at"

DELETE_TASKS_OF = "DELETE FROM new_tasks WHERE instance_id = ?"

ABANDON_TASK = """
UPDATE new_tasks SET lease_owner = NULL, lease_expires = NULL, lease_token = NULL, visible_at = ?
WHERE id = ? AND lease_token = ?
"""

RENEW_TASK = "UPDATE new_tasks SET lease_expires = ? WHERE id = ? AND lease_token = ?"

RELEASE_OWNER_TASKS = """
UPDATE new_tasks SET lease_owner = NULL, lease_expires = NULL, lease_token = NULL WHERE lease_owner = ?
"""

SELECT_TASKS_OF = """
SELECT id, instance_id, execution_id, task_id, name, input, lease_token, lease_expires, dequeue_count,
       lease_owner, visible_at
FROM new_tasks WHERE instance_id = ? ORDER BY id
"""

# --- scale metrics (DESIGN §8): independent sub-queries, no join blow-up ---------------------------------

SCALE_METRICS = f"""
SELECT
    (SELECT COUNT(*) FROM (
         SELECT instance_id FROM new_events WHERE visible_at <= :now
         UNION
         SELECT instance_id FROM instances WHERE lease_expires IS NOT NULL AND lease_expires > :now
     ) AS u JOIN instances AS i ON i.instance_id = u.instance_id
     WHERE i.status IN {LIVE}),
    (SELECT COUNT(*) FROM new_tasks WHERE visible_at <= :now),
    (SELECT COUNT(*) FROM instances WHERE lease_expires IS NOT NULL AND lease_expires > :now),
    (SELECT COUNT(*) FROM (SELECT DISTINCT instance_id FROM new_events WHERE visible_at <= :now) AS v
     JOIN instances AS i ON i.instance_id = v.instance_id WHERE i.status IN {LIVE}),
    (SELECT COUNT(*) FROM new_events WHERE visible_at > :now AND kind = 'timer_fired'),
    (SELECT COUNT(*) FROM new_tasks)
"""

# --- removal (replace, purge) ------------------------------------------------------------------------

REMOVE_INSTANCE = (
    "DELETE FROM history WHERE instance_key = (SELECT instance_key FROM instances WHERE instance_id = ?)",
    "DELETE FROM new_events WHERE instance_id = ?",
    "DELETE FROM new_tasks WHERE instance_id = ?",
    "DELETE FROM instances WHERE instance_id = ?",
)

# --- workers -----------------------------------------------------------------------------------------

UPSERT_WORKER = """
INSERT INTO workers (worker_id, host, pid, started_at, heartbeat_at, orchestrations, activities,
                     max_orchestrations, max_activities, inflight_orchestrations, inflight_activities, extra)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
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

DELETE_WORKER = "DELETE FROM workers WHERE worker_id = ?"
PRUNE_LOST_WORKERS = "DELETE FROM workers WHERE heartbeat_at < ?"
