"""The checkpoint of the PostgreSQL hub: a batch of episodes in one transaction, a SAVEPOINT per item.

The batch first locks the instance rows of all its items (``FOR UPDATE``, in instance-id order, so two
batches never deadlock on each other) and checks each item's lease token and execution; an item whose
lease is lost writes nothing. Each remaining item runs under its own SAVEPOINT: a history row that
already exists (the split-brain guard) rolls back that item alone while the rest of the batch commits.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, get_args

import psycopg

from dtctl.core.decision import (
    Action,
    CreateTimer,
    Decision,
    ScheduleTask,
    SendEvent,
    StartSubOrchestration,
)
from dtctl.core.failure import FailureDetails
from dtctl.core.history import (
    ALL_STATUSES,
    CONTINUED_AS_NEW,
    TERMINAL_STATUSES,
    EventRaised,
    ExecutionStarted,
    SubOrchestrationFailed,
    TimerFired,
    encode_event,
)
from dtctl.hub import postgres_ops as ops
from dtctl.hub import postgres_queries as q
from dtctl.hub.base import CheckpointResult, NewInstance, OrchestrationWorkItem
from dtctl.hub.postgres_conn import constraint_of
from dtctl.hub.sqlite_ops import instance_rows_for, new_execution_id
from dtctl.hub.sqlite_rows import EventRow, event_row, failure_to_json

LEASE_LOST = "lease lost: the instance's lease token changed (another worker owns it now)"
DUPLICATE_HISTORY = "lease lost: another worker already wrote this history (split brain guard)"
ID_TAKEN = "conflict: another transaction created an instance this episode starts; it will run again"
_DECISION_STATUSES = frozenset(ALL_STATUSES) | {CONTINUED_AS_NEW}

Conn = psycopg.Connection[tuple[Any, ...]]


@dataclass(frozen=True, slots=True)
class _Owner:
    """The instance row as the checkpoint found it (locked FOR UPDATE)."""

    lease_token: str | None
    execution_id: str
    history_length: int
    status: str
    name: str
    parent_instance_id: str | None
    parent_task_id: int | None
    parent_execution_id: str | None
    instance_key: int
    execution_no: int


@dataclass(slots=True)
class _Episode:
    conn: Conn
    now: int
    instance_id: str
    execution_id: str
    local: bool  # False when the execution ends here: its own timers and tasks would be deleted anyway
    inbox: list[EventRow] = field(default_factory=list)
    tasks: list[tuple[int, str, str | None]] = field(default_factory=list)


def checkpoint_batch(
    conn: Conn, now: int, batch: Sequence[tuple[OrchestrationWorkItem, Decision]]
) -> list[CheckpointResult]:
    for _item, decision in batch:
        if decision.status not in _DECISION_STATUSES:
            raise ValueError(f"a decision cannot have status {decision.status!r}")
    ids = sorted({item.instance_id for item, _ in batch})
    owners = {row[0]: _Owner(*row[1:]) for row in conn.execute(q.SELECT_FOR_CHECKPOINT, (ids,)).fetchall()}
    return [
        _checkpoint_item(conn, now, item, decision, owners.get(item.instance_id)) for item, decision in batch
    ]


def _checkpoint_item(
    conn: Conn, now: int, item: OrchestrationWorkItem, decision: Decision, owner: _Owner | None
) -> CheckpointResult:
    if owner is None or owner.lease_token != item.lease_token or owner.execution_id != item.execution_id:
        return CheckpointResult(item.instance_id, False, LEASE_LOST)
    try:
        with conn.transaction():  # a SAVEPOINT inside the batch transaction
            _write_episode(conn, now, item, decision, owner)
    except psycopg.errors.UniqueViolation as exc:
        if constraint_of(exc) == "history_pkey":
            return CheckpointResult(item.instance_id, False, DUPLICATE_HISTORY)
        return CheckpointResult(item.instance_id, False, ID_TAKEN)
    return CheckpointResult(item.instance_id, True)


def _write_episode(
    conn: Conn, now: int, item: OrchestrationWorkItem, decision: Decision, owner: _Owner
) -> None:
    iid, execution_id = item.instance_id, owner.execution_id
    status = decision.status
    ends = status in TERMINAL_STATUSES
    continues = status == CONTINUED_AS_NEW
    base = owner.history_length
    if decision.new_history:
        conn.execute(
            q.INSERT_HISTORY,
            (
                owner.instance_key,
                owner.execution_no,
                list(range(base, base + len(decision.new_history))),
                [encode_event(ev) for ev in decision.new_history],
            ),
        )
    if item.messages:
        # Exactly the consumed messages: whatever arrived during the lease stays for the next episode.
        conn.execute(q.DELETE_MESSAGES, (iid, [m.id for m in item.messages]))
    episode = _Episode(conn, now, iid, execution_id, local=not (ends or continues))
    for action in decision.actions:
        _HANDLERS[type(action)](episode, action)
    if episode.tasks:
        task_ids, names, inputs = ops.columns(episode.tasks, 3)
        conn.execute(q.INSERT_TASKS, (iid, execution_id, now, task_ids, names, inputs))
    ops.enqueue(conn, episode.inbox)
    if continues:
        _continue_as_new(conn, now, decision, owner, iid)
        return
    conn.execute(
        q.UPDATE_AFTER_EPISODE,
        (
            status,
            decision.custom_status,
            decision.output,
            failure_to_json(decision.failure),
            now if ends else None,
            now,
            len(decision.new_history),
            iid,
        ),
    )
    if ends:
        conn.execute(q.DELETE_INBOX, (iid,))
        conn.execute(q.DELETE_TASKS_OF, (iid,))
        parent = (owner.parent_instance_id, owner.parent_task_id, owner.parent_execution_id)
        ops.notify_parent(conn, now, iid, parent, status, decision.output, decision.failure)


def _continue_as_new(conn: Conn, now: int, decision: Decision, owner: _Owner, iid: str) -> None:
    spec = decision.continue_as_new
    if spec is None:
        raise ValueError("a CONTINUED_AS_NEW decision needs continue_as_new")
    new_execution = spec.execution_id
    # Keep the execution that just ended (for `history show --execution`), drop the ones before it.
    conn.execute(q.DELETE_OLDER_HISTORY, (owner.instance_key, owner.execution_no))
    conn.execute(q.DELETE_OTHER_EXECUTION_EVENTS, (iid, new_execution))
    conn.execute(q.DELETE_TASKS_OF, (iid,))
    started = ExecutionStarted(
        timestamp=now,
        name=owner.name,
        instance_id=iid,
        execution_id=new_execution,
        input=spec.input,
        parent_instance_id=owner.parent_instance_id,
        parent_task_id=owner.parent_task_id,
    )
    rows = [event_row(iid, new_execution, started, now)]
    rows.extend(event_row(iid, None, event, now) for event in spec.carryover_events)
    ops.enqueue(conn, rows)
    conn.execute(q.UPDATE_CONTINUE_AS_NEW, (new_execution, spec.input, decision.custom_status, now, iid))


# --- actions -------------------------------------------------------------------------------------------


def _schedule_task(ep: _Episode, action: ScheduleTask) -> None:
    if ep.local:
        ep.tasks.append((action.task_id, action.name, action.input))


def _create_timer(ep: _Episode, action: CreateTimer) -> None:
    if ep.local:
        fired = TimerFired(timestamp=action.fire_at, task_id=action.task_id, fire_at=action.fire_at)
        ep.inbox.append(event_row(ep.instance_id, ep.execution_id, fired, action.fire_at))


def _start_sub_orchestration(ep: _Episode, action: StartSubOrchestration) -> None:
    found = ops.status_of(ep.conn, action.instance_id)
    if found is not None and found[0] not in TERMINAL_STATUSES:
        if ep.local:
            failure = FailureDetails(
                message=f"cannot start sub-orchestration {action.instance_id!r}: "
                f"an instance with that id exists and is {found[0]}",
                error_type="dtctl.errors.InstanceAlreadyExists",
            )
            refused = SubOrchestrationFailed(timestamp=ep.now, task_id=action.task_id, failure=failure)
            ep.inbox.append(event_row(ep.instance_id, ep.execution_id, refused, ep.now))
        return
    if found is not None:
        ops.remove_instances(ep.conn, [action.instance_id])  # a finished instance with that id is replaced
    child = NewInstance(
        instance_id=action.instance_id,
        name=action.name,
        input=action.input,
        parent_instance_id=ep.instance_id,
        parent_task_id=action.task_id,
    )
    row, started = instance_rows_for(child, ep.now, new_execution_id(), ep.execution_id)
    # Inserted now, not batched: a second start of the same id in this episode must see it. A plain
    # INSERT: an id created concurrently by someone else fails the item (it runs again later).
    ep.conn.execute(INSERT_CHILD, row)
    ep.inbox.append(started)


INSERT_CHILD = """
INSERT INTO instances (instance_id, execution_id, name, status, input, created_at, updated_at,
                       scheduled_start, parent_instance_id, parent_task_id, parent_execution_id)
VALUES (%s, %s, %s, 'PENDING', %s, %s, %s, %s, %s, %s, %s)
"""


def _send_event(ep: _Episode, action: SendEvent) -> None:
    found = ops.status_of(ep.conn, action.instance_id)
    if found is None or found[0] in TERMINAL_STATUSES:
        return  # DESIGN §5: an event to a missing or finished instance is dropped
    raised = EventRaised(timestamp=ep.now, name=action.name, input=action.data)
    ep.inbox.append(event_row(action.instance_id, None, raised, ep.now))


_HANDLERS: dict[type[Any], Callable[[_Episode, Any], None]] = {
    ScheduleTask: _schedule_task,
    CreateTimer: _create_timer,
    StartSubOrchestration: _start_sub_orchestration,
    SendEvent: _send_event,
}

_UNHANDLED = [a.__name__ for a in get_args(Action) if a not in _HANDLERS]
if _UNHANDLED:  # pragma: no cover
    raise RuntimeError(f"no checkpoint handler for {', '.join(_UNHANDLED)}")
