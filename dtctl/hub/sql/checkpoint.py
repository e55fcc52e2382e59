"""One checkpoint item, for both hubs: turn an episode's :class:`Decision` into rows.

The backend's checkpoint module checks the lease (and fences the item with its own SAVEPOINT); then
:func:`write_episode` writes the episode through the backend's :class:`~dtctl.hub.sql.dialect.Dialect`: the
same statements in the same order on SQLite and PostgreSQL, only the SQL text and the row shapes differ.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, NamedTuple, get_args

from dtctl.core.decision import (
    Action,
    CallEntity,
    CancelTimer,
    CreateTimer,
    Decision,
    LockEntities,
    ScheduleTask,
    SendEvent,
    SignalEntity,
    StartSubOrchestration,
    UnlockEntities,
)
from dtctl.core.failure import FailureDetails
from dtctl.core.history import EventRaised, ExecutionStarted, SubOrchestrationFailed, TimerFired
from dtctl.core.status import STORED, TERMINAL, RuntimeStatus
from dtctl.core.versioning import version_key
from dtctl.hub.base import NewInstance, OrchestrationWorkItem
from dtctl.hub.sql.dialect import C, Dialect
from dtctl.hub.sql.entities import EntityAction, rows_for_action
from dtctl.hub.sql.instances import instance_rows_for, new_execution_id, notify_parent
from dtctl.hub.sql.records import EntityMessageRow, EventRow, ParentRef, TaskRow, event_row, failure_to_json

LEASE_LOST = "lease lost: the instance's lease token changed (another worker owns it now)"
DUPLICATE_HISTORY = "lease lost: another worker already wrote this history (split brain guard)"
DECISION_STATUSES = frozenset(STORED) | {RuntimeStatus.CONTINUED_AS_NEW}


class Owner(NamedTuple):
    """The instance row as the checkpoint found it (under the write lock, or locked FOR UPDATE)."""

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

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> Owner:
        """A row of ``SELECT_FOR_CHECKPOINT`` (PostgreSQL's starts with the instance id: pass ``row[1:]``)."""
        return tuple.__new__(cls, row)

    def holds(self, item: OrchestrationWorkItem) -> bool:
        """The item's lease is still this row's (same token, same execution)."""
        return self.lease_token == item.lease_token and self.execution_id == item.execution_id

    @property
    def parent(self) -> ParentRef:
        return ParentRef(self.parent_instance_id, self.parent_task_id, self.parent_execution_id)


@dataclass(slots=True)
class _Episode(Generic[C]):
    d: Dialect[C]
    conn: C
    now: int
    instance_id: str
    execution_id: str
    # False when the execution ends in this checkpoint: its own timers and tasks would be deleted anyway.
    local: bool
    inbox: list[EventRow] = field(default_factory=list)
    tasks: list[TaskRow] = field(default_factory=list)
    entity_messages: list[EntityMessageRow] = field(default_factory=list)


def check_status(decision: Decision) -> None:
    if decision.status not in DECISION_STATUSES:
        raise ValueError(f"a decision cannot have status {decision.status!r}")


def write_episode(
    d: Dialect[C], conn: C, now: int, item: OrchestrationWorkItem, decision: Decision, owner: Owner
) -> None:
    q = d.sql
    iid, execution_id = item.instance_id, owner.execution_id
    status = decision.status
    ends = status in TERMINAL
    continues = status == RuntimeStatus.CONTINUED_AS_NEW
    new_history = decision.new_history
    if new_history:
        d.insert_history(conn, owner.instance_key, owner.execution_no, owner.history_length, new_history)
    if item.messages:
        # Exactly the consumed messages: whatever arrived during the lease stays for the next episode.
        d.delete_messages(conn, iid, item.messages)
    episode = _Episode(d, conn, now, iid, execution_id, local=not (ends or continues))
    for action in decision.actions:
        _HANDLERS[type(action)](episode, action)
    if episode.tasks:
        d.insert_tasks(conn, episode.tasks)
    d.enqueue(conn, episode.inbox)
    if episode.entity_messages:
        d.send_entity_messages(conn, episode.entity_messages)
    if continues:
        _continue_as_new(d, conn, now, decision, owner, iid)
        return
    conn.execute(
        q.update_after_episode,
        (
            status,
            decision.custom_status,
            decision.output,
            failure_to_json(decision.failure),
            now if ends else None,
            now,
            len(new_history),
            iid,
        ),
    )
    if ends:
        conn.execute(q.delete_inbox, (iid,))
        conn.execute(q.delete_tasks_of, (iid,))
        notify_parent(d, conn, now, iid, owner.parent, status, decision.output, decision.failure)


def _continue_as_new(d: Dialect[C], conn: C, now: int, decision: Decision, owner: Owner, iid: str) -> None:
    q = d.sql
    spec = decision.continue_as_new
    if spec is None:
        raise ValueError("a CONTINUED_AS_NEW decision needs continue_as_new")
    new_execution = spec.execution_id
    # Keep the execution that just ended (for `history show --execution`), drop the ones before it.
    conn.execute(q.delete_older_history, (owner.instance_key, owner.execution_no))
    conn.execute(q.delete_other_execution_events, (iid, new_execution))
    conn.execute(q.delete_tasks_of, (iid,))
    started = ExecutionStarted(
        timestamp=now,
        name=owner.name,
        instance_id=iid,
        execution_id=new_execution,
        input=spec.input,
        parent_instance_id=owner.parent_instance_id,
        parent_task_id=owner.parent_task_id,
        version=spec.version,
    )
    rows = [event_row(iid, new_execution, started, now)]
    rows.extend(event_row(iid, None, event, now) for event in spec.carryover_events)
    if spec.carryover_events:
        # The saved events are older than anything that arrived during the ending episode: queue those
        # arrivals again behind them (the inbox is read in id order), keeping their own order and times.
        rows.extend(EventRow(*row) for row in conn.execute(q.select_pending_events, (iid,)).fetchall())
        conn.execute(q.delete_inbox, (iid,))
    d.enqueue(conn, rows)
    params = (
        new_execution,
        spec.input,
        decision.custom_status,
        now,
        spec.version,
        version_key(spec.version),
        iid,
    )
    conn.execute(q.update_continue_as_new, params)


# --- actions -------------------------------------------------------------------------------------------


def _schedule_task(ep: _Episode[Any], action: ScheduleTask) -> None:
    if ep.local:
        ep.tasks.append(
            TaskRow(ep.instance_id, ep.execution_id, action.task_id, action.name, action.input, ep.now)
        )


def _create_timer(ep: _Episode[Any], action: CreateTimer) -> None:
    if ep.local:
        fired = TimerFired(timestamp=action.fire_at, task_id=action.task_id, fire_at=action.fire_at)
        ep.inbox.append(event_row(ep.instance_id, ep.execution_id, fired, action.fire_at))


def _cancel_timer(ep: _Episode[Any], action: CancelTimer) -> None:
    if ep.local:  # an ending execution drops its whole inbox anyway
        ep.conn.execute(ep.d.sql.delete_timer_fired, (ep.instance_id, ep.execution_id, action.task_id))


def _start_sub_orchestration(ep: _Episode[Any], action: StartSubOrchestration) -> None:
    found = ep.d.status_of(ep.conn, action.instance_id, "")
    if found is not None and found.status not in TERMINAL:
        if ep.local:
            failure = FailureDetails(
                message=f"cannot start sub-orchestration {action.instance_id!r}: "
                f"an instance with that id exists and is {found.status}",
                error_type="dtctl.errors.InstanceAlreadyExists",
            )
            refused = SubOrchestrationFailed(timestamp=ep.now, task_id=action.task_id, failure=failure)
            ep.inbox.append(event_row(ep.instance_id, ep.execution_id, refused, ep.now))
        return
    if found is not None:
        ep.d.remove_instance(ep.conn, action.instance_id)  # a finished instance with that id is replaced
    child = NewInstance(
        instance_id=action.instance_id,
        name=action.name,
        input=action.input,
        parent_instance_id=ep.instance_id,
        parent_task_id=action.task_id,
        version=action.version,
    )
    row, started = instance_rows_for(child, ep.now, new_execution_id(), ep.execution_id)
    # Inserted now, not batched: a second start of the same id in this episode must see it. A plain
    # INSERT: on PostgreSQL an id created concurrently by someone else fails the item (it runs again).
    ep.conn.execute(ep.d.sql.insert_child, row)
    ep.inbox.append(started)


def _send_event(ep: _Episode[Any], action: SendEvent) -> None:
    found = ep.d.status_of(ep.conn, action.instance_id, "")
    if found is None or found.status in TERMINAL:
        return  # an event to a missing or finished instance is dropped
    raised = EventRaised(timestamp=ep.now, name=action.name, input=action.data)
    ep.inbox.append(event_row(action.instance_id, None, raised, ep.now))


def _to_entity(ep: _Episode[Any], action: EntityAction) -> None:
    # Sent even by an episode that ends the execution: its signals and unlocks must arrive (a call's
    # response then finds the caller finished and is dropped, like any late completion).
    ep.entity_messages.extend(rows_for_action(action, ep.instance_id, ep.execution_id, ep.now))


_HANDLERS: dict[type[Any], Callable[[_Episode[Any], Any], None]] = {
    ScheduleTask: _schedule_task,
    CreateTimer: _create_timer,
    CancelTimer: _cancel_timer,
    StartSubOrchestration: _start_sub_orchestration,
    SendEvent: _send_event,
    CallEntity: _to_entity,
    SignalEntity: _to_entity,
    LockEntities: _to_entity,
    UnlockEntities: _to_entity,
}


# A new action type in dtctl.core.decision must get a handler here: fail at import, not mid-checkpoint.
_UNHANDLED = [a.__name__ for a in get_args(Action) if a not in _HANDLERS]
if _UNHANDLED:  # pragma: no cover
    raise RuntimeError(f"no checkpoint handler for {', '.join(_UNHANDLED)}")
