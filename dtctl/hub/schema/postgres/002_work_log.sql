-- dtctl PostgreSQL task hub, schema version 2: what `dtctl top` needs to report throughput and latency
-- (the SQLite hub's version 2, in PostgreSQL's types).

-- The hub's time at which the current lease of an activity task was taken (NULL for a task leased
-- before this version): the start of the task, for schedule-to-start and start-to-complete latency.
ALTER TABLE __SCHEMA__.new_tasks ADD COLUMN leased_at bigint;
-- Leased tasks only (as instances_leased for instances): leases by owner, expired leases and the
-- leased count stay cheap however long the queue of ready tasks is.
CREATE INDEX new_tasks_leased ON __SCHEMA__.new_tasks (lease_expires, lease_owner)
    WHERE lease_expires IS NOT NULL;

-- Finished work items with their timings, written in the transaction that commits them: one row per
-- committed activity result and per committed orchestration episode. Append-only; rows older than a
-- few minutes are deleted by the writers themselves, so the table stays small. Never read by workers.
CREATE TABLE __SCHEMA__.work_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind        text NOT NULL,             -- 'activity' or 'orchestration' (one episode)
    name        text NOT NULL,             -- the activity's or the orchestration's name
    outcome     text NOT NULL,             -- 'ok' or 'failed' (task_failed; an episode that failed the instance)
    queued_at   bigint NOT NULL,           -- visible (ready to run) since
    started_at  bigint NOT NULL,           -- leased by a worker
    finished_at bigint NOT NULL            -- committed
);
-- Windows per kind (counts by outcome from the index alone), and pruning by age.
CREATE INDEX work_log_by_kind ON __SCHEMA__.work_log (kind, finished_at, outcome);

-- Workers write the log: every role granted the runtime privileges on the hub's tables (`dtctl hub
-- init --role`) gets them on the new table too, whoever runs this migration. (Default privileges
-- cover it only when the role that granted them runs the migration.)
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
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON __SCHEMA__.work_log TO %s', grantee_name);
    END LOOP;
END
$$;
