-- dtctl SQLite task hub, schema version 1.
-- Shape follows durabletask-mssql (Instances / History / NewEvents / NewTasks), without a payloads
-- table: payloads are encoded JSON text stored in the row that owns them. No foreign keys: instances
-- are created, replaced and purged by the hub in one transaction, and FK checks would only slow the
-- hot path. Times are integers, microseconds since the Unix epoch, UTC.

-- One row per instance: the current execution, its status and the orchestration lease.
CREATE TABLE instances (
    -- A stable integer key (an explicit INTEGER PRIMARY KEY survives VACUUM) that history rows use
    -- instead of repeating two 32-character ids in every row.
    instance_key        INTEGER PRIMARY KEY,
    instance_id         TEXT NOT NULL UNIQUE,
    execution_id        TEXT NOT NULL,
    execution_no        INTEGER NOT NULL DEFAULT 0,  -- +1 at each continue-as-new
    previous_execution_id TEXT,            -- the execution before this one; its history is kept
    name                TEXT NOT NULL,
    status              TEXT NOT NULL,
    input               TEXT,
    output              TEXT,
    custom_status       TEXT,
    failure             TEXT,              -- FailureDetails as JSON
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    completed_at        INTEGER,
    scheduled_start     INTEGER,
    parent_instance_id  TEXT,
    parent_task_id      INTEGER,
    parent_execution_id TEXT,              -- the parent execution that started this one
    lease_owner         TEXT,
    lease_expires       INTEGER,
    lease_token         TEXT,
    history_length      INTEGER NOT NULL DEFAULT 0
);
-- list_instances: newest first, keyset paging on (created_at, instance_id).
CREATE INDEX instances_by_created ON instances (created_at, instance_id);
CREATE INDEX instances_by_status ON instances (status, created_at, instance_id);
-- recursive terminate walks parent links.
CREATE INDEX instances_by_parent ON instances (parent_instance_id) WHERE parent_instance_id IS NOT NULL;
-- scale metrics and release_leases only look at leased rows: a partial index keeps that cheap.
CREATE INDEX instances_leased ON instances (lease_expires, lease_owner) WHERE lease_expires IS NOT NULL;
-- purge by completion time.
CREATE INDEX instances_by_completed ON instances (completed_at) WHERE completed_at IS NOT NULL;

-- The event history of each execution. The primary key is the split-brain guard: two workers that
-- both believe they own an instance cannot both append at the same sequence.
-- Rows stay compact (storage and load time grow with history): keyed by small integers
-- (instances.instance_key, instances.execution_no), and the event's fields live only in its encoded
-- form. history_view below spells out instance and execution ids, kind, task id, name and timestamp.
CREATE TABLE history (
    instance_key INTEGER NOT NULL,
    execution_no INTEGER NOT NULL,
    sequence     INTEGER NOT NULL,
    payload      TEXT NOT NULL,            -- the encoded history event (dtctl.core.history)
    PRIMARY KEY (instance_key, execution_no, sequence)
) WITHOUT ROWID;

-- The orchestration inbox. id gives FIFO order. execution_id tags completions and timers with the
-- execution they belong to (external events are untagged and go to whichever execution is current).
CREATE TABLE new_events (
    id            INTEGER PRIMARY KEY,
    instance_id   TEXT NOT NULL,
    execution_id  TEXT,
    kind          TEXT NOT NULL,
    name          TEXT,
    task_id       INTEGER,
    payload       TEXT NOT NULL,           -- the encoded history event
    visible_at    INTEGER NOT NULL,
    dequeue_count INTEGER NOT NULL DEFAULT 0
);
-- Leasing scans visible events oldest first (covering), then takes one instance's visible events.
CREATE INDEX new_events_by_visible ON new_events (visible_at, instance_id, execution_id);
CREATE INDEX new_events_by_instance ON new_events (instance_id, visible_at);

-- The activity queue: competing consumers lease rows in FIFO (id) order.
CREATE TABLE new_tasks (
    id            INTEGER PRIMARY KEY,
    instance_id   TEXT NOT NULL,
    execution_id  TEXT NOT NULL,
    task_id       INTEGER NOT NULL,
    name          TEXT NOT NULL,
    input         TEXT,
    visible_at    INTEGER NOT NULL,
    lease_owner   TEXT,
    lease_expires INTEGER,
    lease_token   TEXT,
    dequeue_count INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX new_tasks_by_instance ON new_tasks (instance_id);
CREATE INDEX new_tasks_by_visible ON new_tasks (visible_at);

-- Live worker processes (heartbeats); registered names are JSON arrays.
CREATE TABLE workers (
    worker_id               TEXT PRIMARY KEY,
    host                    TEXT NOT NULL,
    pid                     INTEGER NOT NULL,
    started_at              INTEGER NOT NULL,
    heartbeat_at            INTEGER NOT NULL,
    orchestrations          TEXT NOT NULL DEFAULT '[]',
    activities              TEXT NOT NULL DEFAULT '[]',
    max_orchestrations      INTEGER NOT NULL DEFAULT 0,
    max_activities          INTEGER NOT NULL DEFAULT 0,
    inflight_orchestrations INTEGER NOT NULL DEFAULT 0,
    inflight_activities     INTEGER NOT NULL DEFAULT 0,
    extra                   TEXT NOT NULL DEFAULT '{}'
);

-- For people reading the hub with any SQLite tool: history with its event fields spelled out.
CREATE VIEW history_view AS
SELECT i.instance_id,
       CASE h.execution_no WHEN i.execution_no THEN i.execution_id ELSE i.previous_execution_id END
           AS execution_id,
       h.sequence,
       json_extract(h.payload, '$.kind') AS kind,
       json_extract(h.payload, '$.task_id') AS task_id,
       json_extract(h.payload, '$.name') AS name,
       json_extract(h.payload, '$.timestamp') AS timestamp,
       h.payload
FROM history AS h JOIN instances AS i ON i.instance_key = h.instance_key;
