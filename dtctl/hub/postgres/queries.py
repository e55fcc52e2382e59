"""The PostgreSQL hub's statements, read once at import from ``queries.sql`` (named blocks).

The Python names are what the hub modules use; the SQL is reviewed in the ``.sql`` file. The fragments
filled into it are defined here: the server clock, "now" (an injected test clock or the server's), a
fresh lease token, and the live statuses generated from :class:`~dtctl.core.status.RuntimeStatus`.
"""

from __future__ import annotations

from dtctl.core.status import LIVE as LIVE_STATUSES
from dtctl.core.status import WorkItemKind, sql_list
from dtctl.hub.sql.named import load_queries
from dtctl.hub.sql.repair import RepairStatements

SERVER_NOW = "(extract(epoch FROM clock_timestamp()) * 1000000)::bigint"
NOW = f"COALESCE(%(now)s::bigint, {SERVER_NOW})"
LIVE = sql_list(LIVE_STATUSES)
TOKEN = "replace(gen_random_uuid()::text, '-', '')"

_SQL = load_queries(
    __package__ or "",
    "queries.sql",
    {
        "server_now": SERVER_NOW,
        "hub_now": NOW,
        "live": LIVE,
        "token": TOKEN,
        "work_kinds": sql_list(WorkItemKind),
    },
)

SELECT_NOW = _SQL.take("select_now")
INSERT_INSTANCES = _SQL.take("insert_instances")
INSERT_CHILD = _SQL.take("insert_child")
INSERT_TAGS = _SQL.take("insert_tags")
SELECT_STATUSES_FOR_UPDATE = _SQL.take("select_statuses_for_update")
SELECT_EXECUTIONS = _SQL.take("select_executions")
SELECT_STATUS = _SQL.take("select_status")
SELECT_STATUS_FOR_SHARE = _SQL.take("select_status_for_share")
SELECT_STATUS_FOR_UPDATE = _SQL.take("select_status_for_update")
SELECT_PARENT = _SQL.take("select_parent")
SELECT_FOR_CHECKPOINT = _SQL.take("select_for_checkpoint")
UPDATE_AFTER_EPISODE = _SQL.take("update_after_episode")
UPDATE_CONTINUE_AS_NEW = _SQL.take("update_continue_as_new")
TERMINATE_AT_ONCE = _SQL.take("terminate_at_once")
SELECT_DESCENDANTS = _SQL.take("select_descendants")
INSERT_EVENTS = _SQL.take("insert_events")
HAS_PENDING_TERMINATE = _SQL.take("has_pending_terminate")
LEASE_ORCHESTRATIONS = _SQL.take("lease_orchestrations")
DELETE_EVENTS_BY_ID = _SQL.take("delete_events_by_id")
DELETE_MESSAGES = _SQL.take("delete_messages")
DELETE_INBOX = _SQL.take("delete_inbox")
DELETE_TIMER_FIRED = _SQL.take("delete_timer_fired")
DELETE_OTHER_EXECUTION_EVENTS = _SQL.take("delete_other_execution_events")
SELECT_PENDING_EVENTS = _SQL.take("select_pending_events")
SELECT_INBOX = _SQL.take("select_inbox")
RELEASE_INSTANCE = _SQL.take("release_instance")
RELEASE_INSTANCES = _SQL.take("release_instances")
RENEW_INSTANCES = _SQL.take("renew_instances")
RELEASE_OWNER_INSTANCES = _SQL.take("release_owner_instances")
NOTIFY = _SQL.take("notify")
INSERT_HISTORY = _SQL.take("insert_history")
LOAD_HISTORY = _SQL.take("load_history")
LOAD_HISTORY_PAGE = _SQL.take("load_history_page")
DELETE_OLDER_HISTORY = _SQL.take("delete_older_history")
INSERT_TASKS = _SQL.take("insert_tasks")
LEASE_ACTIVITIES = _SQL.take("lease_activities")
COMPLETE_ACTIVITIES = _SQL.take("complete_activities")
DELETE_TASKS_OF = _SQL.take("delete_tasks_of")
ABANDON_TASK = _SQL.take("abandon_task")
RENEW_TASKS = _SQL.take("renew_tasks")
RELEASE_OWNER_TASKS = _SQL.take("release_owner_tasks")
SELECT_TASKS_OF = _SQL.take("select_tasks_of")
SCALE_INPUTS = _SQL.take("scale_inputs")
UPSERT_WORKER = _SQL.take("upsert_worker")
SELECT_WORKERS = _SQL.take("select_workers")
DELETE_WORKER = _SQL.take("delete_worker")
PRUNE_LOST_WORKERS = _SQL.take("prune_lost_workers")
NEXT_VISIBLE = _SQL.take("next_visible")
LOG_WORK = _SQL.take("log_work")
PRUNE_WORK_LOG = _SQL.take("prune_work_log")
SERVER_FACTS = _SQL.take("server_facts")
TABLES_WITHOUT_DML = _SQL.take("tables_without_dml")
REMOVE_INSTANCES = tuple(_SQL.take(f"remove_instances_{n}") for n in range(1, 9))
SET_TRACE_CONTEXT = _SQL.take("set_trace_context")
SELECT_TRACE_RECORD = _SQL.take("select_trace_record")
ENSURE_ENTITIES = _SQL.take("ensure_entities")
INSERT_ENTITY_MESSAGES = _SQL.take("insert_entity_messages")
LEASE_ENTITIES = _SQL.take("lease_entities")
TAKE_ENTITY_MESSAGES = _SQL.take("take_entity_messages")
NEXT_VISIBLE_ENTITY = _SQL.take("next_visible_entity")
STORE_ENTITY = _SQL.take("store_entity")
DELETE_ENTITY_MESSAGES = _SQL.take("delete_entity_messages")
PARK_ENTITY_MESSAGES = _SQL.take("park_entity_messages")
UNPARK_ENTITY_MESSAGES = _SQL.take("unpark_entity_messages")
INSERT_RESPONSES_IF_LIVE = _SQL.take("insert_responses_if_live")
RELEASE_ENTITY = _SQL.take("release_entity")
RENEW_ENTITIES = _SQL.take("renew_entities")
RELEASE_OWNER_ENTITIES = _SQL.take("release_owner_entities")
SELECT_ENTITY_MESSAGES = _SQL.take("select_entity_messages")
ORPHANED_ENTITY_LOCKS = _SQL.take("orphaned_entity_locks")
RELEASE_ENTITY_LOCKS = _SQL.take("release_entity_locks")
UNPARK_ENTITIES = _SQL.take("unpark_entities")
EMPTY_ENTITIES = _SQL.take("empty_entities")
DELETE_ENTITIES = _SQL.take("delete_entities")

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
