-- dtctl PostgreSQL task hub, schema version 1. Every object lives in the hub's own schema
-- (__SCHEMA__ is replaced by it, quoted). The shape is the SQLite hub's (itself durabletask-mssql's
-- Instances / History / NewEvents / NewTasks): payloads are encoded JSON text in the row that owns
-- them, no foreign keys (the hub creates, replaces and purges an instance's rows in one transaction).
-- Times are bigint microseconds since the Unix epoch, UTC, judged by the server's clock.

CREATE TABLE __SCHEMA__.instances (
    instance_id         text PRIMARY KEY,
    -- A small stable key that history rows carry instead of two long ids.
    instance_key        bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    execution_id        text NOT NULL,
    execution_no        integer NOT NULL DEFAULT 0,  -- +1 at each continue-as-new
    previous_execution_id text,            -- the execution before this one; its history is kept
    name                text NOT NULL,
    status              text NOT NULL,
    input               text,
    output              text,
    custom_status       text,
    failure             text,              -- FailureDetails as JSON
    created_at          bigint NOT NULL,
    updated_at          bigint NOT NULL,
    completed_at        bigint,
    scheduled_start     bigint,
    parent_instance_id  text,
    parent_task_id      integer,
    parent_execution_id text,
    lease_owner         text,
    lease_expires       bigint,
    lease_token         text,
    history_length      integer NOT NULL DEFAULT 0
) WITH (fillfactor = 80);
CREATE INDEX instances_by_created ON __SCHEMA__.instances (created_at, instance_id);
CREATE INDEX instances_by_status ON __SCHEMA__.instances (status, created_at, instance_id);
CREATE INDEX instances_by_parent ON __SCHEMA__.instances (parent_instance_id)
    WHERE parent_instance_id IS NOT NULL;
CREATE INDEX instances_leased ON __SCHEMA__.instances (lease_expires, lease_owner)
    WHERE lease_expires IS NOT NULL;
CREATE INDEX instances_by_completed ON __SCHEMA__.instances (completed_at) WHERE completed_at IS NOT NULL;

-- The event history of each execution. The primary key is the split-brain guard.
CREATE TABLE __SCHEMA__.history (
    instance_key bigint NOT NULL,
    execution_no integer NOT NULL,
    sequence     integer NOT NULL,
    payload      text NOT NULL,            -- the encoded history event (dtctl.core.history)
    PRIMARY KEY (instance_key, execution_no, sequence)
);

-- The orchestration inbox; id gives FIFO order. execution_id tags completions and timers.
CREATE TABLE __SCHEMA__.new_events (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    instance_id   text NOT NULL,
    execution_id  text,
    kind          text NOT NULL,
    name          text,
    task_id       integer,
    payload       text NOT NULL,
    visible_at    bigint NOT NULL,
    dequeue_count integer NOT NULL DEFAULT 0
);
CREATE INDEX new_events_by_visible ON __SCHEMA__.new_events (visible_at, id) INCLUDE (instance_id, execution_id);
CREATE INDEX new_events_by_instance ON __SCHEMA__.new_events (instance_id, visible_at);

-- The activity queue: competing consumers lease rows in FIFO (id) order with SKIP LOCKED.
CREATE TABLE __SCHEMA__.new_tasks (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    instance_id   text NOT NULL,
    execution_id  text NOT NULL,
    task_id       integer NOT NULL,
    name          text NOT NULL,
    input         text,
    visible_at    bigint NOT NULL,
    lease_owner   text,
    lease_expires bigint,
    lease_token   text,
    dequeue_count integer NOT NULL DEFAULT 0
) WITH (fillfactor = 80);
CREATE INDEX new_tasks_by_instance ON __SCHEMA__.new_tasks (instance_id);
CREATE INDEX new_tasks_by_visible ON __SCHEMA__.new_tasks (visible_at);

CREATE TABLE __SCHEMA__.workers (
    worker_id               text PRIMARY KEY,
    host                    text NOT NULL,
    pid                     integer NOT NULL,
    started_at              bigint NOT NULL,
    heartbeat_at            bigint NOT NULL,
    orchestrations          text NOT NULL DEFAULT '[]',
    activities              text NOT NULL DEFAULT '[]',
    max_orchestrations      integer NOT NULL DEFAULT 0,
    max_activities          integer NOT NULL DEFAULT 0,
    inflight_orchestrations integer NOT NULL DEFAULT 0,
    inflight_activities     integer NOT NULL DEFAULT 0,
    extra                   text NOT NULL DEFAULT '{}'
);

-- The wake-up hint: work was queued. The channel is the schema's name; the notification is sent at
-- commit, once per transaction (PostgreSQL folds identical notifications). Polling stays the guarantee.
CREATE FUNCTION __SCHEMA__.notify_work() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(TG_TABLE_SCHEMA, '');
    RETURN NULL;
END
$$;
CREATE TRIGGER new_events_wake AFTER INSERT ON __SCHEMA__.new_events
    FOR EACH STATEMENT EXECUTE FUNCTION __SCHEMA__.notify_work();
CREATE TRIGGER new_tasks_wake AFTER INSERT ON __SCHEMA__.new_tasks
    FOR EACH STATEMENT EXECUTE FUNCTION __SCHEMA__.notify_work();

-- The server's clock in epoch microseconds: every lease and visibility decision uses it.
CREATE FUNCTION __SCHEMA__.now_us() RETURNS bigint LANGUAGE sql VOLATILE AS $$
    SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint
$$;

-- The inputs of the scale recommendation at a time (NULL: the server's now). Each count
-- is an independent sub-query: an instance is counted once however many messages it has, and a task
-- row once whatever its instance's inbox holds.
CREATE FUNCTION __SCHEMA__.scale_inputs(at_us bigint DEFAULT NULL)
RETURNS TABLE (
    live_orchestrations bigint,
    live_activities bigint,
    leased_orchestrations bigint,
    visible_inbox_instances bigint,
    future_timers bigint,
    scheduled_activities bigint
) LANGUAGE sql VOLATILE AS $$
    WITH clock AS (SELECT COALESCE(at_us, __SCHEMA__.now_us()) AS now)
    SELECT
        (SELECT count(*) FROM (
             SELECT e.instance_id FROM __SCHEMA__.new_events AS e, clock WHERE e.visible_at <= clock.now
             UNION
             SELECT i.instance_id FROM __SCHEMA__.instances AS i, clock
             WHERE i.lease_expires IS NOT NULL AND i.lease_expires > clock.now
         ) AS u JOIN __SCHEMA__.instances AS i ON i.instance_id = u.instance_id
         WHERE i.status IN ('PENDING', 'RUNNING', 'SUSPENDED')),
        (SELECT count(*) FROM __SCHEMA__.new_tasks AS t, clock WHERE t.visible_at <= clock.now),
        (SELECT count(*) FROM __SCHEMA__.instances AS i, clock
         WHERE i.lease_expires IS NOT NULL AND i.lease_expires > clock.now),
        (SELECT count(*) FROM (
             SELECT DISTINCT e.instance_id FROM __SCHEMA__.new_events AS e, clock WHERE e.visible_at <= clock.now
         ) AS v JOIN __SCHEMA__.instances AS i ON i.instance_id = v.instance_id
         WHERE i.status IN ('PENDING', 'RUNNING', 'SUSPENDED')),
        (SELECT count(*) FROM __SCHEMA__.new_events AS e, clock
         WHERE e.visible_at > clock.now AND e.kind = 'timer_fired'),
        (SELECT count(*) FROM __SCHEMA__.new_tasks)
    FROM clock
$$;

-- ceil(live orchestrations / max_orchestrations) + ceil(live activities / max_activities), each
-- divisor at least 1; 0 when idle; never NULL. For KEDA's postgresql scaler:
--   query: SELECT <schema>.scale_recommendation(8, 8)   targetQueryValue: "1"
CREATE FUNCTION __SCHEMA__.scale_recommendation_at(
    max_orchestrations integer, max_activities integer, at_us bigint
) RETURNS integer LANGUAGE sql VOLATILE AS $$
    SELECT (ceil(s.live_orchestrations::numeric / GREATEST(COALESCE(max_orchestrations, 1), 1))
          + ceil(s.live_activities::numeric / GREATEST(COALESCE(max_activities, 1), 1)))::integer
    FROM __SCHEMA__.scale_inputs(at_us) AS s
$$;

CREATE FUNCTION __SCHEMA__.scale_recommendation(max_orchestrations integer, max_activities integer)
RETURNS integer LANGUAGE sql VOLATILE AS $$
    SELECT __SCHEMA__.scale_recommendation_at(max_orchestrations, max_activities, NULL)
$$;

-- For people reading the hub with psql: history with its event fields spelled out.
CREATE VIEW __SCHEMA__.history_view AS
SELECT i.instance_id,
       CASE h.execution_no WHEN i.execution_no THEN i.execution_id ELSE i.previous_execution_id END
           AS execution_id,
       h.sequence,
       h.payload::jsonb ->> 'kind' AS kind,
       (h.payload::jsonb ->> 'task_id')::integer AS task_id,
       h.payload::jsonb ->> 'name' AS name,
       (h.payload::jsonb ->> 'timestamp')::bigint AS timestamp,
       h.payload
FROM __SCHEMA__.history AS h JOIN __SCHEMA__.instances AS i ON i.instance_key = h.instance_key;
