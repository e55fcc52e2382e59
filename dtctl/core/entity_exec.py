"""Running an entity: the messages waiting in its inbox applied to its state, as one batch. Pure.

The hub stores what is sent to an entity as :class:`EntityMessage` rows in the entity's inbox (FIFO by
``id``) and hands a batch of them, with the entity's state and lock holder, to :func:`run_entity_batch`.
The result says what to commit in one transaction: the new state, the new lock holder, which messages
were consumed, and the messages to send (:data:`Outgoing`).

Ordering and locking follow DTFx: messages are applied in inbox order; while a critical section holds
the entity's lock, only messages from the orchestration that holds it (its calls, signals and its
``unlock``) are applied, and the rest stay in the inbox, in order, until the lock is released.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from dtctl.core.entity_id import EntityInstanceId
from dtctl.core.failure import FailureDetails

__all__ = [
    "EntityBatchResult",
    "EntityFunction",
    "EntityMessage",
    "ForwardLock",
    "LockGranted",
    "LockHolder",
    "MessageKind",
    "OperationResponse",
    "Outgoing",
    "SendSignal",
    "StartOrchestration",
    "run_entity_batch",
]


class MessageKind(StrEnum):
    SIGNAL = "signal"  # an operation, one way
    CALL = "call"  # an operation whose result (or failure) goes back to the calling orchestration
    LOCK = "lock"  # a critical section asks for this entity's lock
    UNLOCK = "unlock"  # a critical section releases it


@dataclass(frozen=True, slots=True, kw_only=True)
class EntityMessage:
    """One message in an entity's inbox.

    ``id`` is the hub's FIFO id. A ``lock`` carries the whole sorted ``lock_set`` and this entity's
    ``lock_position`` in it, so that the entity can forward the request to the next one. Messages sent
    by a client or an entity have no sender execution or task.
    """

    id: int
    kind: MessageKind
    operation: str | None = None
    input: str | None = None  # encoded JSON
    sender_instance_id: str | None = None
    sender_execution_id: str | None = None
    sender_task_id: int | None = None
    critical_section_id: str | None = None
    lock_set: tuple[str, ...] = ()
    lock_position: int = 0


@dataclass(frozen=True, slots=True)
class LockHolder:
    """The critical section holding an entity's lock."""

    instance_id: str
    execution_id: str | None
    critical_section_id: str


# --- what a batch sends ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class OperationResponse:
    """The outcome of a ``call``, for the calling orchestration: ``entity_operation_completed`` with
    ``result`` or ``entity_operation_failed`` with ``failure`` for ``task_id``."""

    instance_id: str
    execution_id: str | None
    task_id: int
    result: str | None = None
    failure: FailureDetails | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LockGranted:
    """The last entity of a lock set took its lock: ``entity_lock_granted`` for the orchestration."""

    instance_id: str
    execution_id: str | None
    task_id: int
    critical_section_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ForwardLock:
    """This entity took its lock; the request goes on to the next entity of the set.

    ``message`` is the lock message for ``entity_id`` (its ``lock_position`` advanced); its ``id`` is
    the id of the message it was forwarded from, the hub gives it a new one when it stores it.
    """

    entity_id: str
    message: EntityMessage


@dataclass(frozen=True, slots=True, kw_only=True)
class SendSignal:
    """An operation signalled it to another entity (or itself), now or at ``fire_at`` (epoch µs)."""

    entity_id: str
    operation: str
    input: str | None = None
    fire_at: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class StartOrchestration:
    """An operation scheduled a new orchestration instance."""

    name: str
    instance_id: str
    input: str | None = None


Outgoing = OperationResponse | LockGranted | ForwardLock | SendSignal | StartOrchestration


@dataclass(frozen=True, slots=True, kw_only=True)
class EntityBatchResult:
    """What to commit after a batch.

    ``state`` is None when the entity has no state (never set, or deleted). ``consumed`` lists the ids
    of the messages applied, in order; the others stay in the inbox. ``outgoing`` is in the order sent.
    """

    state: str | None
    lock: LockHolder | None
    consumed: tuple[int, ...]
    outgoing: tuple[Outgoing, ...]


# The registered entity: a function ``fn(ctx, input)``, a DurableEntity subclass, or the app's
# definition of either (``App.get_entity(name)``); None when no entity of that name is registered.
EntityFunction = Callable[..., Any]


def run_entity_batch(
    entity: EntityFunction | None,
    entity_id: EntityInstanceId,
    state: str | None,
    lock: LockHolder | None,
    messages: Sequence[EntityMessage],
    *,
    now: int,
) -> EntityBatchResult:
    """Apply ``messages`` (inbox order) to the entity whose encoded state is ``state``; ``now`` is the
    time in epoch µs (for the ids of orchestrations the entity starts, never for decisions)."""
    raise NotImplementedError  # contract only: the executor follows in the next commit
