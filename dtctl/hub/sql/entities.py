"""Entity messages and entity batches as rows, for both hubs.

Two write paths meet the entity queue:

- an orchestration's checkpoint turns ``CallEntity`` / ``SignalEntity`` / ``LockEntities`` /
  ``UnlockEntities`` into entity inbox rows (:func:`rows_for_action`), in the checkpoint's transaction;
- a worker commits an entity batch (:func:`commit_batch`): the new state and lock fenced by the lease
  token, the consumed messages deleted, waiting messages parked or unparked, and everything the batch
  sends — responses and lock grants to orchestration inboxes (dropped when the caller is gone, finished
  or on another execution, as activity results are), lock forwards and signals to entity inboxes,
  new orchestrations — in the caller's transaction.

A backend supplies an :class:`EntityDialect`: the statements whose text or row shape differs.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Protocol, TypeVar

from dtctl.core.decision import CallEntity, LockEntities, SignalEntity, UnlockEntities
from dtctl.core.entity_exec import (
    EntityBatchResult,
    EntityMessage,
    ForwardLock,
    LockGranted,
    LockHolder,
    MessageKind,
    OperationResponse,
    SendSignal,
    StartOrchestration,
)
from dtctl.core.entity_id import EntityInstanceId
from dtctl.core.history import (
    EntityLockGranted,
    EntityOperationCompleted,
    EntityOperationFailed,
    HistoryEvent,
)
from dtctl.hub.entity_records import ENTITY_BATCH_LIMIT, EntityBatch, EntityHealth, EntityWorkItem
from dtctl.hub.records import NewInstance
from dtctl.hub.sql.dialect import Connection
from dtctl.hub.sql.records import EntityMessageRow, EventRow, event_row

C_contra = TypeVar("C_contra", bound=Connection, contravariant=True)

LEASE_LOST = "lease lost: the entity's lease token changed (another worker owns it now)"

# Columns of an entity inbox row as the lease reads it (``take_entity_messages`` on both backends).
MESSAGE_COLUMNS = (
    "id, kind, operation, input, sender_instance_id, sender_execution_id, sender_task_id,"
    " critical_section_id, lock_set, lock_position"
)


def message_row(
    entity_id: str, message: EntityMessage, now: int, visible_at: int | None = None
) -> EntityMessageRow:
    parsed = EntityInstanceId.parse(entity_id)
    return EntityMessageRow(
        str(parsed),
        parsed.entity,
        parsed.key,
        str(message.kind),
        message.operation,
        message.input,
        message.sender_instance_id,
        message.sender_execution_id,
        message.sender_task_id,
        message.critical_section_id,
        json.dumps(list(message.lock_set)) if message.lock_set else None,
        message.lock_position,
        now,
        now if visible_at is None else max(now, visible_at),
        message.trace_context,
    )


def message_from_row(row: Sequence[Any], trace_context: str | None = None) -> EntityMessage:
    """A row of ``MESSAGE_COLUMNS`` (``take_entity_messages`` adds the sender's trace context)."""
    lock_set = row[8]
    return EntityMessage(
        id=row[0],
        kind=MessageKind(row[1]),
        operation=row[2],
        input=row[3],
        sender_instance_id=row[4],
        sender_execution_id=row[5],
        sender_task_id=row[6],
        critical_section_id=row[7],
        lock_set=tuple(json.loads(lock_set)) if lock_set else (),
        lock_position=row[9],
        trace_context=trace_context,
    )


def health_from_row(at: int, row: Sequence[Any]) -> EntityHealth:
    """The one row of the entity-health query (both backends select the same columns)."""
    entities, ready, leased, locked, orphaned_locks, oldest_ready_at, max_dequeue_count = row[:7]
    return EntityHealth(
        at=at,
        entities=entities,
        ready=ready,
        leased=leased,
        locked=locked,
        orphaned_locks=orphaned_locks,
        oldest_ready_at=oldest_ready_at,
        max_dequeue_count=max_dequeue_count,
    )


def leased_entity(
    entity_id: str,
    row: Sequence[Any],
    messages: Sequence[EntityMessage],
    *,
    token: str,
    expires: int,
    at: int,
) -> EntityWorkItem:
    """A leased entity from its row: name, key, state, lock instance/execution/section, dequeue count."""
    name, key, state, lock_instance, lock_execution, lock_section, dequeue_count = row[:7]
    return EntityWorkItem(
        entity_id=entity_id,
        name=name,
        key=key,
        state=state,
        lock=lock_from_columns(lock_instance, lock_execution, lock_section),
        lease_token=token,
        lease_expires=expires,
        leased_at=at,
        dequeue_count=int(dequeue_count),
        messages=tuple(messages),
    )


def batch_limit(head: EntityWorkItem) -> int:
    """How many messages a lease takes: all of a locked entity's (its holder's must not wait behind
    a limit), one of a suspect's (re-leased after its worker died), else a batch; -1 means all."""
    if head.lock is not None:
        return -1
    return 1 if head.dequeue_count > 1 else ENTITY_BATCH_LIMIT


def lock_from_columns(
    instance_id: str | None, execution_id: str | None, section_id: str | None
) -> LockHolder | None:
    if instance_id is None or section_id is None:
        return None
    return LockHolder(instance_id, execution_id, section_id)


def lock_columns(lock: LockHolder | None) -> tuple[str | None, str | None, str | None]:
    if lock is None:
        return None, None, None
    return lock.instance_id, lock.execution_id, lock.critical_section_id


# --- from orchestrations --------------------------------------------------------------------------------


EntityAction = CallEntity | SignalEntity | LockEntities | UnlockEntities


def rows_for_action(
    action: EntityAction, instance_id: str, execution_id: str, now: int
) -> list[EntityMessageRow]:
    """The inbox rows one orchestration action sends (in the order sent: they get increasing ids)."""
    if isinstance(action, CallEntity | SignalEntity):
        kind = MessageKind.CALL if isinstance(action, CallEntity) else MessageKind.SIGNAL
        fire_at = action.fire_at if isinstance(action, SignalEntity) else None
        message = _from_orchestration(
            instance_id, execution_id, action.task_id, kind, operation=action.operation
        )
        return [message_row(action.entity_id, replace(message, input=action.input), now, fire_at)]
    if isinstance(action, LockEntities):
        lock = _from_orchestration(instance_id, execution_id, action.task_id, MessageKind.LOCK)
        lock = replace(lock, critical_section_id=action.critical_section_id, lock_set=action.entity_ids)
        return [message_row(action.entity_ids[0], lock, now)]
    unlock = _from_orchestration(instance_id, execution_id, action.task_id, MessageKind.UNLOCK)
    unlock = replace(unlock, critical_section_id=action.critical_section_id)
    return [message_row(entity_id, unlock, now) for entity_id in action.entity_ids]


def _from_orchestration(
    instance_id: str, execution_id: str, task_id: int, kind: MessageKind, operation: str | None = None
) -> EntityMessage:
    return EntityMessage(
        id=0,
        kind=kind,
        operation=operation,
        sender_instance_id=instance_id,
        sender_execution_id=execution_id,
        sender_task_id=task_id,
    )


# --- committing a batch ----------------------------------------------------------------------------------


class EntityDialect(Protocol[C_contra]):
    """One backend's statements for the entity write steps; nothing here commits."""

    def send_entity_messages(self, conn: C_contra, rows: Sequence[EntityMessageRow]) -> None:
        """Create the entity rows that do not exist yet, then append ``rows`` (in order) to inboxes."""
        ...

    def store_entity(self, conn: C_contra, now: int, item: EntityWorkItem, result: EntityBatchResult) -> bool:
        """State, lock and last-modified time, the lease released, fenced by the lease token; False:
        the lease is lost and nothing was written."""
        ...

    def settle_entity_messages(
        self, conn: C_contra, entity_id: str, consumed: Sequence[int], parked: Sequence[int], locked: bool
    ) -> None:
        """Delete the consumed messages; park the ones left waiting for a lock (``parked``), or, when
        the entity ends unlocked, unpark every parked message of it."""
        ...

    def respond(self, conn: C_contra, rows: Sequence[EventRow]) -> None:
        """Add events to orchestration inboxes, each only while its tagged execution is current and live."""
        ...

    def start_orchestrations(self, conn: C_contra, now: int, instances: Sequence[NewInstance]) -> None:
        """Create instances; an id that exists already is left alone."""
        ...


def commit_batch(d: EntityDialect[C_contra], conn: C_contra, now: int, batch: EntityBatch) -> bool:
    """Write one entity batch; False (nothing written) when its lease was lost."""
    item, result = batch.item, batch.result
    if not d.store_entity(conn, now, item, result):
        return False
    consumed = set(result.consumed)
    waiting = [m.id for m in item.messages if m.id not in consumed] if result.lock is not None else []
    d.settle_entity_messages(conn, item.entity_id, result.consumed, waiting, result.lock is not None)
    route(d, conn, now, result)
    return True


def route(d: EntityDialect[C_contra], conn: C_contra, now: int, result: EntityBatchResult) -> None:
    """Send what a batch sent, in the order it sent it."""
    events: list[EventRow] = []
    messages: list[EntityMessageRow] = []
    starts: list[NewInstance] = []
    for out in result.outgoing:
        if isinstance(out, OperationResponse | LockGranted):
            events.append(event_row(out.instance_id, out.execution_id, _response_event(out, now), now))
        elif isinstance(out, ForwardLock):
            messages.append(message_row(out.entity_id, out.message, now))
        elif isinstance(out, SendSignal):
            signal = EntityMessage(id=0, kind=MessageKind.SIGNAL, operation=out.operation, input=out.input)
            messages.append(message_row(out.entity_id, signal, now, out.fire_at))
        elif isinstance(out, StartOrchestration):
            starts.append(NewInstance(instance_id=out.instance_id, name=out.name, input=out.input))
    if events:
        d.respond(conn, events)
    if messages:
        d.send_entity_messages(conn, messages)
    if starts:
        d.start_orchestrations(conn, now, starts)


def _response_event(out: OperationResponse | LockGranted, now: int) -> HistoryEvent:
    if isinstance(out, LockGranted):
        return EntityLockGranted(
            timestamp=now, task_id=out.task_id, critical_section_id=out.critical_section_id
        )
    if out.failure is not None:
        return EntityOperationFailed(timestamp=now, task_id=out.task_id, failure=out.failure)
    return EntityOperationCompleted(timestamp=now, task_id=out.task_id, result=out.result)
