-- dtctl SQLite task hub, schema version 5: durable entities, the hub's third queue.
-- Self-contained (tables and indexes only), so it can be renumbered.

-- One row per entity, created by the first message sent to it. ``entity_id`` is the string form
-- ``@name@key`` (name lower-cased); the entity lease works as the instance lease: one worker at a
-- time, a fresh token per lease, every commit fenced by it, takeover once it expires.
CREATE TABLE entities (
    entity_id         TEXT PRIMARY KEY,
    name              TEXT NOT NULL,
    key               TEXT NOT NULL,
    state             TEXT,              -- encoded JSON; NULL: no state (never set, or deleted)
    lock_instance_id  TEXT,              -- the critical section holding the lock (all NULL: unlocked)
    lock_execution_id TEXT,
    lock_section_id   TEXT,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,  -- last modified: the last batch that applied a message
    lease_owner       TEXT,
    lease_expires     INTEGER,
    lease_token       TEXT,
    leased_at         INTEGER,
    dequeue_count     INTEGER NOT NULL DEFAULT 0  -- leases since the last committed batch
) WITHOUT ROWID;
CREATE INDEX entities_by_name ON entities (name, entity_id);
CREATE INDEX entities_by_updated ON entities (updated_at);
CREATE INDEX entities_leased ON entities (lease_expires, lease_owner) WHERE lease_expires IS NOT NULL;
CREATE INDEX entities_locked ON entities (lock_instance_id) WHERE lock_instance_id IS NOT NULL;

-- The entity inbox: FIFO by id per entity. ``parked`` marks messages a batch left waiting because
-- another critical section holds the entity's lock: they do not make the entity leasable again until
-- the lock is released (then they are unparked), so a locked entity is not leased in a loop.
CREATE TABLE entity_inbox (
    id                  INTEGER PRIMARY KEY,
    entity_id           TEXT NOT NULL,
    kind                TEXT NOT NULL,   -- signal, call, lock, unlock
    operation           TEXT,
    input               TEXT,
    sender_instance_id  TEXT,
    sender_execution_id TEXT,
    sender_task_id      INTEGER,
    critical_section_id TEXT,
    lock_set            TEXT,            -- a lock's sorted entity ids, as a JSON array
    lock_position       INTEGER NOT NULL DEFAULT 0,
    created_at          INTEGER NOT NULL,
    visible_at          INTEGER NOT NULL,
    parked              INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX entity_inbox_ready ON entity_inbox (visible_at, entity_id) WHERE parked = 0;
CREATE INDEX entity_inbox_by_entity ON entity_inbox (entity_id, id);
