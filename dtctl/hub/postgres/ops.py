"""Write steps of the PostgreSQL hub that run inside a caller's transaction.

Each function takes the connection and the transaction's ``now`` and never commits. Where the SQLite
hub relies on its single writer, these take row locks: a client operation locks the one instance row
it judges (``FOR UPDATE`` when it may change it, ``FOR SHARE`` when it only queues a message), and a
checkpoint locks its own instances; so a decision is never made on a row someone is changing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import partial
from typing import Any

import psycopg

from dtctl.core.history import HistoryEvent, encode_event
from dtctl.core.status import TERMINAL, RuntimeStatus
from dtctl.errors import InstanceAlreadyExists
from dtctl.hub.base import CreateOutcome, IfExists, InboxMessage, NewInstance
from dtctl.hub.postgres import queries as q
from dtctl.hub.sql import instances as common
from dtctl.hub.sql.dialect import Dialect, RowLock, Statements
from dtctl.hub.sql.instances import instance_rows_for, new_execution_id, tag_rows_of
from dtctl.hub.sql.instances import not_found as not_found
from dtctl.hub.sql.records import (
    EntityMessageRow,
    EventRow,
    InstanceRow,
    InstanceStatus,
    TaskRow,
    first_from_row,
)

Conn = psycopg.Connection[tuple[Any, ...]]

_STATUS_SQL = {"": q.SELECT_STATUS, "share": q.SELECT_STATUS_FOR_SHARE, "update": q.SELECT_STATUS_FOR_UPDATE}


def columns(rows: Sequence[Sequence[Any]], width: int) -> list[list[Any]]:
    """Rows to one list per column (what ``unnest`` takes)."""
    if not rows:
        return [[] for _ in range(width)]
    return [list(col) for col in zip(*rows, strict=True)]


def remove_instances(conn: Conn, instance_ids: Sequence[str]) -> None:
    """Every trace of the instances: history (all executions), inbox, activity tasks and rows."""
    if instance_ids:
        ids = list(instance_ids)
        for statement in q.REMOVE_INSTANCES:
            conn.execute(statement, (ids,))


class PostgresDialect:
    """The PostgreSQL half of the shared write steps (:class:`~dtctl.hub.sql.dialect.Dialect`)."""

    sql = Statements(
        select_parent=q.SELECT_PARENT,
        insert_child=q.INSERT_CHILD,
        select_descendants=q.SELECT_DESCENDANTS,
        terminate_at_once=q.TERMINATE_AT_ONCE,
        has_pending_terminate=q.HAS_PENDING_TERMINATE,
        delete_inbox=q.DELETE_INBOX,
        delete_timer_fired=q.DELETE_TIMER_FIRED,
        delete_tasks_of=q.DELETE_TASKS_OF,
        update_after_episode=q.UPDATE_AFTER_EPISODE,
        update_continue_as_new=q.UPDATE_CONTINUE_AS_NEW,
        delete_older_history=q.DELETE_OLDER_HISTORY,
        delete_other_execution_events=q.DELETE_OTHER_EXECUTION_EVENTS,
        select_pending_events=q.SELECT_PENDING_EVENTS,
    )

    def status_of(self, conn: Conn, instance_id: str, lock: RowLock = "") -> InstanceStatus | None:
        """The instance's status, execution and lease expiry, or None; ``lock``: "", "share", "update"."""
        row = conn.execute(_STATUS_SQL[lock], (instance_id,)).fetchone()
        return None if row is None else InstanceStatus.from_row(row)

    def enqueue(self, conn: Conn, rows: Sequence[EventRow]) -> None:
        if rows:
            conn.execute(q.INSERT_EVENTS, columns(rows, 8))

    def remove_instance(self, conn: Conn, instance_id: str) -> None:
        remove_instances(conn, [instance_id])

    def insert_history(
        self, conn: Conn, instance_key: int, execution_no: int, first: int, events: Sequence[HistoryEvent]
    ) -> None:
        sequence = list(range(first, first + len(events)))
        conn.execute(
            q.INSERT_HISTORY, (instance_key, execution_no, sequence, [encode_event(ev) for ev in events])
        )

    def delete_messages(self, conn: Conn, instance_id: str, messages: Sequence[InboxMessage]) -> None:
        conn.execute(q.DELETE_MESSAGES, (instance_id, [m.id for m in messages]))

    def insert_tasks(self, conn: Conn, tasks: Sequence[TaskRow]) -> None:
        first = tasks[0]  # one episode's tasks: one instance, execution and time
        conn.execute(
            q.INSERT_TASKS,
            (
                first.instance_id,
                first.execution_id,
                first.visible_at,
                [t.task_id for t in tasks],
                [t.name for t in tasks],
                [t.input for t in tasks],
            ),
        )

    def send_entity_messages(self, conn: Conn, rows: Sequence[EntityMessageRow]) -> None:
        ids = sorted({(r.entity_id, r.name, r.key) for r in rows})
        conn.execute(q.ENSURE_ENTITIES, columns([(*e, rows[0].created_at) for e in ids], 4))
        conn.execute(q.INSERT_ENTITY_MESSAGES, columns([(r.entity_id, *r[3:]) for r in rows], 13))


DIALECT: Dialect[Conn] = PostgresDialect()
# The same steps for this package's own callers (bound methods: no extra call on the hot path).
status_of = DIALECT.status_of
enqueue = DIALECT.enqueue

# Client messages and terminate: the shared steps of dtctl.hub.sql.instances. They lock the one instance row
# they judge: FOR SHARE to queue a message, FOR UPDATE to terminate.
send_to_live = partial(common.send_to_live, DIALECT)
terminate = partial(common.terminate, DIALECT)


# --- creating instances ---------------------------------------------------------------------------------


def create_instances(
    conn: Conn, now: int, instances: Sequence[NewInstance], if_exists: IfExists, where: str
) -> list[CreateOutcome]:
    ids = list(dict.fromkeys(new.instance_id for new in instances))
    existing: dict[str, str] = dict(conn.execute(q.SELECT_STATUSES_FOR_UPDATE, (ids,)).fetchall())
    outcomes: list[CreateOutcome | None] = []
    chosen: list[NewInstance] = []
    replaced: list[str] = []
    seen: set[str] = set()
    for new in instances:
        status = RuntimeStatus.PENDING if new.instance_id in seen else existing.get(new.instance_id)
        if status is not None:
            if if_exists == "skip":
                outcomes.append(CreateOutcome(new.instance_id, False))
                continue
            if if_exists == "fail" or status not in TERMINAL:
                raise _exists(new.instance_id, status, where)
            replaced.append(new.instance_id)
        seen.add(new.instance_id)
        chosen.append(new)
        outcomes.append(None)  # filled once the insert says whether it won
    remove_instances(conn, replaced)
    parents = _executions(conn, {n.parent_instance_id for n in chosen if n.parent_instance_id})
    instance_rows: list[InstanceRow] = []
    starts: dict[str, EventRow] = {}
    for new in chosen:
        row, started = instance_rows_for(
            new, now, new_execution_id(), parents.get(new.parent_instance_id or "")
        )
        instance_rows.append(row)
        starts[new.instance_id] = started
    won: set[str] = set()
    if instance_rows:
        inserted = conn.execute(q.INSERT_INSTANCES, _instance_columns(instance_rows)).fetchall()
        won = {first_from_row(r) for r in inserted}
    lost = [new.instance_id for new in chosen if new.instance_id not in won]
    if lost and if_exists != "skip":
        raise _exists(lost[0], "being created by another client", where)
    enqueue(conn, [starts[new.instance_id] for new in chosen if new.instance_id in won])
    _store_extras(conn, [new for new in chosen if new.instance_id in won])
    created = iter(chosen)
    result: list[CreateOutcome] = []
    for outcome in outcomes:
        if outcome is None:
            new = next(created)
            outcome = CreateOutcome(new.instance_id, new.instance_id in won)
        result.append(outcome)
    return result


def _store_extras(conn: Conn, created: Sequence[NewInstance]) -> None:
    """What a new instance carries besides its row: its tags and its caller's trace context."""
    _insert_tags(conn, created)
    traced = [(n.trace_context, n.instance_id) for n in created if n.trace_context]
    if traced:
        conn.cursor().executemany(q.SET_TRACE_CONTEXT, traced)


def _insert_tags(conn: Conn, created: Sequence[NewInstance]) -> None:
    rows = [row for new in created for row in tag_rows_of(new)]
    if rows:
        conn.execute(q.INSERT_TAGS, columns(rows, 3))


def _instance_columns(rows: Sequence[InstanceRow]) -> list[list[Any]]:
    """``INSERT_INSTANCES``'s arrays: every column but ``updated_at`` (it starts equal to ``created_at``)."""
    return [
        [r.instance_id for r in rows],
        [r.execution_id for r in rows],
        [r.name for r in rows],
        [r.input for r in rows],
        [r.created_at for r in rows],
        [r.scheduled_start for r in rows],
        [r.parent_instance_id for r in rows],
        [r.parent_task_id for r in rows],
        [r.parent_execution_id for r in rows],
        [r.version for r in rows],
        [r.version_key for r in rows],
        [r.tags for r in rows],
    ]


def _exists(instance_id: str, status: str, where: str) -> InstanceAlreadyExists:
    return InstanceAlreadyExists(
        f"instance {instance_id!r} already exists in hub {where} and is {status}",
        hint="pass --if-exists skip, or --if-exists replace for a finished instance",
    )


def _executions(conn: Conn, instance_ids: Iterable[str]) -> dict[str, str]:
    ids = [i for i in instance_ids if i]
    if not ids:
        return {}
    return dict(conn.execute(q.SELECT_EXECUTIONS, (ids,)).fetchall())
