"""The SQLite hub's statements, read once at import from queries.sql (named blocks).

The Python names are what the hub modules use; the SQL is reviewed in the .sql file.
"""

from __future__ import annotations

from dtctl.core.status import LIVE as LIVE_STATUSES
from dtctl.core.status import WorkItemKind, sql_list
from dtctl.hub.sql.named import load_queries
from dtctl.hub.sql.repair import RepairStatements

LIVE = sql_list(LIVE_STATUSES)

_SQL = load_queries(__package__ or "", "queries.sql", {"live": LIVE, "work_kinds": sql_list(WorkItemKind)})

INSERT_INSTANCE = _SQL.take("insert_instance")
INSERT_TAGS = _SQL.take("insert_tags")
SELECT_STATUS = _SQL.take("select_status")
SELECT_PARENT = _SQL.take("select_parent")
SELECT_FOR_CHECKPOINT = _SQL.take("select_for_checkpoint")
UPDATE_AFTER_EPISODE = _SQL.take("update_after_episode")
UPDATE_CONTINUE_AS_NEW = _SQL.take("update_continue_as_new")
TERMINATE_AT_ONCE = _SQL.take("terminate_at_once")
SELECT_DESCENDANTS = _SQL.take("select_descendants")
INSERT_EVENT = _SQL.take("insert_event")
INSERT_RESULT_IF_LIVE = _SQL.take("insert_result_if_live")
HAS_PENDING_TERMINATE = _SQL.take("has_pending_terminate")
PICK_INSTANCES = _SQL.take("pick_instances")
NEXT_VISIBLE_EVENT = _SQL.take("next_visible_event")
LEASE_INSTANCE = _SQL.take("lease_instance")
TAKE_MESSAGES = _SQL.take("take_messages")
DELETE_MESSAGE = _SQL.take("delete_message")
DELETE_INBOX = _SQL.take("delete_inbox")
DELETE_TIMER_FIRED = _SQL.take("delete_timer_fired")
DELETE_OTHER_EXECUTION_EVENTS = _SQL.take("delete_other_execution_events")
SELECT_PENDING_EVENTS = _SQL.take("select_pending_events")
SELECT_INBOX = _SQL.take("select_inbox")
RELEASE_INSTANCE = _SQL.take("release_instance")
RENEW_INSTANCE = _SQL.take("renew_instance")
RELEASE_OWNER_INSTANCES = _SQL.take("release_owner_instances")
INSERT_HISTORY = _SQL.take("insert_history")
LOAD_HISTORY = _SQL.take("load_history")
LOAD_HISTORY_PAGE = _SQL.take("load_history_page")
DELETE_OLDER_HISTORY = _SQL.take("delete_older_history")
INSERT_TASK = _SQL.take("insert_task")
LEASE_TASKS = _SQL.take("lease_tasks")
NEXT_VISIBLE_TASK = _SQL.take("next_visible_task")
DELETE_LEASED_TASK = _SQL.take("delete_leased_task")
DELETE_TASKS_OF = _SQL.take("delete_tasks_of")
ABANDON_TASK = _SQL.take("abandon_task")
RENEW_TASK = _SQL.take("renew_task")
RELEASE_OWNER_TASKS = _SQL.take("release_owner_tasks")
SELECT_TASKS_OF = _SQL.take("select_tasks_of")
SCALE_METRICS = _SQL.take("scale_metrics")
UPSERT_WORKER = _SQL.take("upsert_worker")
SELECT_WORKERS = _SQL.take("select_workers")
DELETE_WORKER = _SQL.take("delete_worker")
PRUNE_LOST_WORKERS = _SQL.take("prune_lost_workers")
LOG_WORK = _SQL.take("log_work")
PRUNE_WORK_LOG = _SQL.take("prune_work_log")
REMOVE_INSTANCE = tuple(_SQL.take(f"remove_instance_{n}") for n in range(1, 9))
SET_TRACE_CONTEXT = _SQL.take("set_trace_context")
SELECT_TRACE_RECORD = _SQL.take("select_trace_record")
ENSURE_ENTITY = _SQL.take("ensure_entity")
INSERT_ENTITY_MESSAGE = _SQL.take("insert_entity_message")
PICK_ENTITIES = _SQL.take("pick_entities")
NEXT_VISIBLE_ENTITY = _SQL.take("next_visible_entity")
LEASE_ENTITY = _SQL.take("lease_entity")
TAKE_ENTITY_MESSAGES = _SQL.take("take_entity_messages")
STORE_ENTITY = _SQL.take("store_entity")
DELETE_ENTITY_MESSAGE = _SQL.take("delete_entity_message")
PARK_ENTITY_MESSAGE = _SQL.take("park_entity_message")
UNPARK_ENTITY_MESSAGES = _SQL.take("unpark_entity_messages")
RELEASE_ENTITY = _SQL.take("release_entity")
RENEW_ENTITY = _SQL.take("renew_entity")
RELEASE_OWNER_ENTITIES = _SQL.take("release_owner_entities")
SELECT_ENTITY_MESSAGES = _SQL.take("select_entity_messages")
ORPHANED_ENTITY_LOCKS = _SQL.take("orphaned_entity_locks")
RELEASE_ENTITY_LOCK = _SQL.take("release_entity_lock")
EMPTY_ENTITIES = _SQL.take("empty_entities")
DELETE_ENTITY = _SQL.take("delete_entity")

_SQL.check_all_taken()

# Rewind (dtctl/hub/sql/repair.py): its own file, read the same way.
_REPAIR_SQL = load_queries(__package__ or "", "repair.sql")
REPAIR = RepairStatements(
    select_for_rewind=_REPAIR_SQL.take("select_for_rewind"),
    select_execution_history=_REPAIR_SQL.take("select_execution_history"),
    update_rewound=_REPAIR_SQL.take("update_rewound"),
    relink_child=_REPAIR_SQL.take("relink_child"),
    insert_imported=_REPAIR_SQL.take("insert_imported"),
)
_REPAIR_SQL.check_all_taken()
