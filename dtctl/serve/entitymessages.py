"""An SDK orchestration's ``sendEntityMessage`` actions as dtctl's entity actions and history events.

The SDK sends one action per message: a call, a signal, a lock request (the whole sorted lock set, sent
to its first entity), and one unlock per locked entity when a critical section ends. Each becomes the
action a native orchestration would have decided, with the history event that lets the SDK replay it
(the event's id is the action's id; see :mod:`dtctl.serve.convert` for the request ids the responses
carry). Pure.
"""

from __future__ import annotations

from dtctl.core.decision import CallEntity, EntityAction, LockEntities, SignalEntity, UnlockEntities
from dtctl.core.entity_id import EntityInstanceId
from dtctl.core.history import (
    EntityLockRequested,
    EntityOperationCalled,
    EntityOperationSignaled,
    EntityUnlockSent,
    HistoryEvent,
)
from dtctl.serve import convert
from dtctl.serve.proto import orchestrator_service_pb2 as pb


def entity_action(
    task_id: int, message: pb.SendEntityMessageAction, now: int
) -> tuple[EntityAction, HistoryEvent]:
    """The action and its history event; ``ValueError`` for a message that names no valid entity."""
    kind = message.WhichOneof("EntityMessageType")
    if kind == "entityOperationCalled":
        called = message.entityOperationCalled
        target, data = _target(called), convert.optional_text(called, "input")
        return (
            CallEntity(task_id=task_id, entity_id=target, operation=called.operation, input=data),
            EntityOperationCalled(
                timestamp=now, task_id=task_id, entity_id=target, operation=called.operation, input=data
            ),
        )
    if kind == "entityOperationSignaled":
        signaled = message.entityOperationSignaled
        target, data = _target(signaled), convert.optional_text(signaled, "input")
        fire_at = convert.micros(signaled.scheduledTime) if signaled.HasField("scheduledTime") else None
        return (
            SignalEntity(
                task_id=task_id, entity_id=target, operation=signaled.operation, input=data, fire_at=fire_at
            ),
            EntityOperationSignaled(
                timestamp=now,
                task_id=task_id,
                entity_id=target,
                operation=signaled.operation,
                input=data,
                fire_at=fire_at,
            ),
        )
    if kind == "entityLockRequested":
        requested = message.entityLockRequested
        lock_set = tuple(sorted({_parsed(e) for e in requested.lockSet}))
        if not lock_set or not requested.criticalSectionId:
            raise ValueError("a lock request needs a critical section id and at least one entity")
        section = requested.criticalSectionId
        return (
            LockEntities(task_id=task_id, critical_section_id=section, entity_ids=lock_set),
            EntityLockRequested(
                timestamp=now, task_id=task_id, critical_section_id=section, entity_ids=lock_set
            ),
        )
    if kind == "entityUnlockSent":
        unlock = message.entityUnlockSent
        target, section = _target(unlock), unlock.criticalSectionId
        return (
            UnlockEntities(task_id=task_id, critical_section_id=section, entity_ids=(target,)),
            EntityUnlockSent(
                timestamp=now, task_id=task_id, critical_section_id=section, entity_ids=(target,)
            ),
        )
    raise ValueError(f"an entity message of kind {kind or '(empty)'} is not supported")


def _target(
    event: pb.EntityOperationCalledEvent | pb.EntityOperationSignaledEvent | pb.EntityUnlockSentEvent,
) -> str:
    if not event.HasField("targetInstanceId"):
        raise ValueError("an entity message names no target entity")
    return _parsed(event.targetInstanceId.value)


def _parsed(text: str) -> str:
    return str(EntityInstanceId.parse(text))
