-- dtctl PostgreSQL task hub, schema version 3: orchestration versions and instance tags (the SQLite
-- hub's version 3, in PostgreSQL's types).

-- The orchestration version of the instance's current execution (NULL: started without one, as every
-- instance created before this version was) and its sort key (dtctl.core.versioning.version_key). The
-- key is compared byte-wise (COLLATE "C"), whatever the database's collation, so the lease filter of a
-- strict or current-or-older worker orders versions exactly as dtctl does.
ALTER TABLE __SCHEMA__.instances ADD COLUMN version text;
ALTER TABLE __SCHEMA__.instances ADD COLUMN version_key text COLLATE "C" NOT NULL DEFAULT '';
-- The instance's tags as a JSON object, for display; instance_tags below is what filters use.
ALTER TABLE __SCHEMA__.instances ADD COLUMN tags text;
-- `dtctl list --version V`: newest first within one version.
CREATE INDEX instances_by_version ON __SCHEMA__.instances (version, created_at, instance_id)
    WHERE version IS NOT NULL;

-- One row per tag of an instance: `dtctl list --tag k=v` finds the instances of a tag through the
-- (name, value) index instead of reading every instance's JSON. Removed with the instance.
CREATE TABLE __SCHEMA__.instance_tags (
    instance_id text NOT NULL,
    name        text NOT NULL,
    value       text NOT NULL,
    PRIMARY KEY (instance_id, name)
);
CREATE INDEX instance_tags_by_value ON __SCHEMA__.instance_tags (name, value, instance_id);

-- Clients write tags: every role granted the runtime privileges on the hub's tables gets them on the
-- new table too, whoever runs this migration (as in version 2).
DO $$
DECLARE
    grantee_name text;
BEGIN
    FOR grantee_name IN
        SELECT DISTINCT a.grantee::regrole::text
        FROM pg_class AS c, aclexplode(c.relacl) AS a
        WHERE c.oid = '__SCHEMA__.instances'::regclass
          AND a.privilege_type = 'INSERT' AND a.grantee <> 0 AND a.grantee <> c.relowner
    LOOP
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON __SCHEMA__.instance_tags TO %s', grantee_name);
    END LOOP;
END
$$;
