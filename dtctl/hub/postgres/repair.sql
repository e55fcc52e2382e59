-- The PostgreSQL hub's statements of a rewind (dtctl/hub/sql/repair.py), named blocks as in queries.sql.

-- select_for_rewind --
SELECT status, execution_id, instance_key, execution_no, output FROM instances WHERE instance_id = %s
FOR UPDATE

-- select_execution_history --
SELECT payload FROM history WHERE instance_key = %s AND execution_no = %s ORDER BY sequence

-- update_rewound --
-- The rewound execution follows the failed one, which stays stored as the previous execution.
UPDATE instances
SET previous_execution_id = execution_id, execution_no = execution_no + 1, execution_id = %s,
    status = 'RUNNING', output = NULL, failure = NULL, completed_at = NULL, history_length = %s,
    updated_at = %s, lease_owner = NULL, lease_expires = NULL, lease_token = NULL
WHERE instance_id = %s

-- relink_child --
UPDATE instances SET parent_execution_id = %s WHERE instance_id = %s

-- insert_imported --
-- An instance from an exported case file (dtctl history import), as it was stored; never leased by
-- itself (nothing is queued for it).
INSERT INTO instances (instance_id, execution_id, execution_no, previous_execution_id, name, status, input,
                       output, custom_status, failure, created_at, updated_at, completed_at, scheduled_start,
                       parent_instance_id, parent_task_id, history_length)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
RETURNING instance_key
