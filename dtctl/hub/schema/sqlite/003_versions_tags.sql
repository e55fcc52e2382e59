-- dtctl SQLite task hub, schema version 3: orchestration versions and instance tags.

-- The orchestration version of the instance's current execution (NULL: started without one, as every
-- instance created before this version was), and its sort key (dtctl.core.versioning.version_key:
-- byte-wise order is version order; '' for no version, older than any). Workers with a strict or
-- current-or-older version match filter their lease on the key, so they never take an instance they
-- would only give back.
ALTER TABLE instances ADD COLUMN version TEXT;
ALTER TABLE instances ADD COLUMN version_key TEXT NOT NULL DEFAULT '';
-- The instance's tags as a JSON object, for display; instance_tags below is what filters use.
ALTER TABLE instances ADD COLUMN tags TEXT;
-- `dtctl list --version V`: newest first within one version.
CREATE INDEX instances_by_version ON instances (version, created_at, instance_id) WHERE version IS NOT NULL;

-- One row per tag of an instance: `dtctl list --tag k=v` finds the instances of a tag through the
-- (name, value) index instead of reading every instance's JSON. Removed with the instance.
CREATE TABLE instance_tags (
    instance_id TEXT NOT NULL,
    name        TEXT NOT NULL,
    value       TEXT NOT NULL,
    PRIMARY KEY (instance_id, name)
) WITHOUT ROWID;
CREATE INDEX instance_tags_by_value ON instance_tags (name, value, instance_id);
