"""Running an entity: the messages waiting in its inbox applied to its state, as one batch. Pure.

The hub stores what is sent to an entity as :class:`EntityMessage` rows in the entity's inbox (FIFO by
``id``) and hands a batch of them, with the entity's state and lock holder, to :func:`run_entity_batch`.
The result says what to commit in one transaction: the new state, the new lock holder, which messages
were consumed, and the messages to send (:data:`Outgoing`).

Ordering and locking follow DTFx: messages are applied in inbox order; while a critical section holds
the entity's lock, only messages from the orchestration that holds it (its calls, signals and its
``unlock``) are applied, and the rest stay in the inbox, in order, until the lock is released.

What the hub hands over: the oldest messages when the entity is free; while it is locked, the holder's
messages and unlocks in inbox order, up to the holder's unlock. (A batch of only the oldest messages
could hold nothing but waiting lock requests and never reach the holder's unlock.) Messages the batch
does not consume stay in the inbox for the next one.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from dtctl.core.entity import EntityContext, EntityDefinition, SentSignal
from dtctl.core.entity_id import EntityInstanceId
from dtctl.core.failure import FailureDetails
from dtctl.errors import RegistrationError

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
    trace_context: str | None = None  # a client signaller's W3C traceparent (for tracing workers)


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
EntityFunction = EntityDefinition | Callable[..., Any]


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
    time in epoch µs (what a delay given to ``signal_entity`` counts from)."""
    definition = (
        entity if isinstance(entity, EntityDefinition) or entity is None else EntityDefinition.of(entity)
    )
    batch = _Batch(definition, entity_id, state, lock, now)
    queue = deque(messages)
    deferred: list[EntityMessage] = []  # waiting for the lock to be released, in inbox order
    while queue:
        message = queue.popleft()
        if not batch.admits(message):
            deferred.append(message)
            continue
        if batch.apply(message):
            # the lock was released: what waited for it comes first again, still in inbox order
            queue.extendleft(reversed(deferred))
            deferred = []
        elif message.kind is MessageKind.UNLOCK and deferred:
            deferred = batch.withdraw(deferred, message.critical_section_id)
    return batch.result()


class _Batch:
    """The entity's state, lock and output while a batch runs."""

    __slots__ = ("_consumed", "_definition", "_entity_id", "_lock", "_now", "_outgoing", "_state")

    def __init__(
        self,
        definition: EntityDefinition | None,
        entity_id: EntityInstanceId,
        state: str | None,
        lock: LockHolder | None,
        now: int,
    ) -> None:
        self._definition = definition
        self._entity_id = entity_id
        self._state = state
        self._lock = lock
        self._now = now
        self._consumed: list[int] = []
        self._outgoing: list[Outgoing] = []

    def result(self) -> EntityBatchResult:
        return EntityBatchResult(
            state=self._state, lock=self._lock, consumed=tuple(self._consumed), outgoing=tuple(self._outgoing)
        )

    def admits(self, message: EntityMessage) -> bool:
        """While locked, only the holder's messages are applied (and unlocks, which cannot wait)."""
        lock = self._lock
        if lock is None or message.kind is MessageKind.UNLOCK:
            return True
        return message.sender_instance_id == lock.instance_id and message.kind is not MessageKind.LOCK

    def withdraw(self, waiting: list[EntityMessage], section_id: str | None) -> list[EntityMessage]:
        """An unlock for a section whose lock request still waits here (its orchestration ended or left
        the section before it got this lock): the request is consumed, it must not take the lock later."""
        kept = []
        for message in waiting:
            if message.kind is MessageKind.LOCK and message.critical_section_id == section_id:
                self._consumed.append(message.id)
            else:
                kept.append(message)
        return kept

    def apply(self, message: EntityMessage) -> bool:
        """Apply one admitted message; True when it released the lock."""
        self._consumed.append(message.id)
        kind = message.kind
        if kind is MessageKind.LOCK:
            self._take_lock(message)
        elif kind is MessageKind.UNLOCK:
            return self._release(message)
        else:
            self._operate(message)
        return False

    def _take_lock(self, message: EntityMessage) -> None:
        self._lock = LockHolder(
            message.sender_instance_id or "", message.sender_execution_id, message.critical_section_id or ""
        )
        following = message.lock_position + 1
        if following < len(message.lock_set):
            forwarded = replace(message, lock_position=following)
            self._outgoing.append(ForwardLock(entity_id=message.lock_set[following], message=forwarded))
            return
        self._outgoing.append(
            LockGranted(
                instance_id=message.sender_instance_id or "",
                execution_id=message.sender_execution_id,
                task_id=message.sender_task_id if message.sender_task_id is not None else -1,
                critical_section_id=message.critical_section_id or "",
            )
        )

    def _release(self, message: EntityMessage) -> bool:
        lock = self._lock
        if lock is None or lock.critical_section_id != message.critical_section_id:
            return False  # a stale unlock (the section is over, or never got this far): nothing to release
        self._lock = None
        return True

    def _operate(self, message: EntityMessage) -> None:
        ctx = EntityContext(
            self._entity_id,
            message.operation or "",
            self._state,
            orchestration_id=message.sender_instance_id,
            now_us=self._now,
            seed=str(message.id),
            converter=None if self._definition is None else self._definition.converter,
        )
        try:
            encoded = self._run(ctx, message)
        except Exception as error:  # the operation's own failure: its changes and messages are dropped
            self._respond(message, None, FailureDetails.from_exception(error))
            return
        self._state = ctx.encoded_state()
        for sent in ctx.sent():
            if isinstance(sent, SentSignal):
                self._outgoing.append(
                    SendSignal(
                        entity_id=sent.entity_id,
                        operation=sent.operation,
                        input=sent.input,
                        fire_at=sent.fire_at,
                    )
                )
            else:
                self._outgoing.append(
                    StartOrchestration(name=sent.name, instance_id=sent.instance_id, input=sent.input)
                )
        self._respond(message, encoded, None)

    def _run(self, ctx: EntityContext, message: EntityMessage) -> str | None:
        definition = self._definition
        if definition is None:
            raise RegistrationError(f"no entity named {self._entity_id.entity!r} is registered")
        if not message.operation:
            raise ValueError(f"a message to entity {str(self._entity_id)!r} names no operation")
        return ctx.encode_result(definition.run(ctx, message.input))

    def _respond(self, message: EntityMessage, result: str | None, failure: FailureDetails | None) -> None:
        if message.kind is not MessageKind.CALL or message.sender_instance_id is None:
            return  # a signal: nobody waits for the outcome
        self._outgoing.append(
            OperationResponse(
                instance_id=message.sender_instance_id,
                execution_id=message.sender_execution_id,
                task_id=message.sender_task_id if message.sender_task_id is not None else -1,
                result=result,
                failure=failure,
            )
        )
