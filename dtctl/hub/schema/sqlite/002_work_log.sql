-- dtctl SQLite task hub, schema version 2: what `dtctl top` needs to report throughput and latency.

-- The hub's time at which the current lease of an activity task was taken (NULL while not leased
-- before this version): the start of the task, for schedule-to-start and start-to-complete latency.
ALTER TABLE new_tasks ADD COLUMN leased_at INTEGER;
-- Leased tasks only (as instances_leased for instances): leases by owner, expired leases and the
-- leased count stay cheap however long the queue of ready tasks is.
CREATE INDEX new_tasks_leased ON new_tasks (lease_expires, lease_owner) WHERE lease_expires IS NOT NULL;

-- Finished work items with their timings, written in the transaction that commits them: one row per
-- committed activity result and per committed orchestration episode. Append-only; rows older than a
-- few minutes are deleted by the writers themselves, so the table stays small. Never read by workers.
CREATE TABLE work_log (
    id          INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL,             -- 'activity' or 'orchestration' (one episode)
    name        TEXT NOT NULL,             -- the activity's or the orchestration's name
    outcome     TEXT NOT NULL,             -- 'ok' or 'failed' (task_failed; an episode that failed the instance)
    queued_at   INTEGER NOT NULL,          -- visible (ready to run) since
    started_at  INTEGER NOT NULL,          -- leased by a worker
    finished_at INTEGER NOT NULL           -- committed
);
-- Windows per kind (counts by outcome without touching the table), and pruning by age.
CREATE INDEX work_log_by_kind ON work_log (kind, finished_at, outcome);
