-- dtctl PostgreSQL task hub, schema version 5: durable entities, the hub's third queue
-- (the SQLite hub's version 5, in PostgreSQL's types). Self-contained, so it can be renumbered.

-- One row per entity, created by the first message sent to it (``@name@key``, name lower-cased).
-- Leased like an instance: one worker at a time, a fresh token per lease, commits fenced by it.
CREATE TABLE __SCHEMA__.entities (
    entity_id         text PRIMARY KEY,
    name              text NOT NULL,
    key               text NOT NULL,
    state             text,              -- encoded JSON; NULL: no state (never set, or deleted)
    lock_instance_id  text,              -- the critical section holding the lock (all NULL: unlocked)
    lock_execution_id text,
    lock_section_id   text,
    created_at        bigint NOT NULL,
    updated_at        bigint NOT NULL,   -- last modified: the last batch that applied a message
    lease_owner       text,
    lease_expires     bigint,
    lease_token       text,
    leased_at         bigint,
    dequeue_count     integer NOT NULL DEFAULT 0  -- leases since the last committed batch
) WITH (fillfactor = 80);
CREATE INDEX entities_by_name ON __SCHEMA__.entities (name, entity_id);
CREATE INDEX entities_by_updated ON __SCHEMA__.entities (updated_at);
CREATE INDEX entities_leased ON __SCHEMA__.entities (lease_expires, lease_owner)
    WHERE lease_expires IS NOT NULL;
CREATE INDEX entities_locked ON __SCHEMA__.entities (lock_instance_id) WHERE lock_instance_id IS NOT NULL;

-- The entity inbox: FIFO by id per entity. ``parked``: left waiting by a batch because another
-- critical section holds the lock; such messages do not make the entity leasable until it is released.
CREATE TABLE __SCHEMA__.entity_inbox (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    entity_id           text NOT NULL,
    kind                text NOT NULL,   -- signal, call, lock, unlock
    operation           text,
    input               text,
    sender_instance_id  text,
    sender_execution_id text,
    sender_task_id      integer,
    critical_section_id text,
    lock_set            text,            -- a lock's sorted entity ids, as a JSON array
    lock_position       integer NOT NULL DEFAULT 0,
    created_at          bigint NOT NULL,
    visible_at          bigint NOT NULL,
    parked              boolean NOT NULL DEFAULT false
);
CREATE INDEX entity_inbox_ready ON __SCHEMA__.entity_inbox (visible_at, entity_id) WHERE NOT parked;
CREATE INDEX entity_inbox_by_entity ON __SCHEMA__.entity_inbox (entity_id, id);

-- The scale recommendation counts an entity with work as an orchestration (durabletask-mssql: an
-- entity is an instance): live_orchestrations now includes entities with a ready message or a live
-- lease. Same signature, so scale_recommendation() and KEDA's query are unchanged.
CREATE OR REPLACE FUNCTION __SCHEMA__.scale_inputs(at_us bigint DEFAULT NULL)
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
         WHERE i.status IN ('PENDING', 'RUNNING', 'SUSPENDED'))
        + (SELECT count(*) FROM (
             SELECT m.entity_id FROM __SCHEMA__.entity_inbox AS m, clock
             WHERE m.visible_at <= clock.now AND NOT m.parked
             UNION
             SELECT n.entity_id FROM __SCHEMA__.entities AS n, clock
             WHERE n.lease_expires IS NOT NULL AND n.lease_expires > clock.now
         ) AS ue),
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

-- Workers read and write the new tables: every role granted the runtime privileges on the hub's
-- tables gets them on these too, whoever runs this migration.
DO $$
DECLARE
    grantee_name text;
BEGIN
    FOR grantee_name IN
        SELECT DISTINCT a.grantee::regrole::text
        FROM pg_class AS c, aclexplode(c.relacl) AS a
        WHERE c.oid = '__SCHEMA__.new_tasks'::regclass
          AND a.privilege_type = 'INSERT' AND a.grantee <> 0 AND a.grantee <> c.relowner
    LOOP
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON __SCHEMA__.entities TO %s', grantee_name);
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON __SCHEMA__.entity_inbox TO %s', grantee_name);
    END LOOP;
END
$$;
