"""The orchestration's side of entities: critical sections, and the tasks entity calls and locks return.

A critical section starts with ``lock_entities`` (the lock set, sorted by entity id so every
orchestration takes locks in one global order and none can wait on another in a cycle) and lasts until
the :class:`EntityLock` the lock task returns is exited, or the execution ends. Inside it the rules of
the durabletask SDK (and DTFx) hold: an orchestration calls only entities it locked, one call per entity
at a time; it does not signal an entity it locked, lock again, or start a sub-orchestration. Pure.
"""

from __future__ import annotations

from typing import Any, Protocol

from dtctl.core import payload
from dtctl.core.entity_id import EntityInstanceId
from dtctl.core.failure import FailureDetails
from dtctl.core.task import CompletableTask, TaskFailedError
from dtctl.errors import OrchestrationStateError

__all__ = [
    "CriticalSection",
    "EntityCallTask",
    "EntityLock",
    "EntityOperationFailedException",
    "LockTask",
    "lock_set",
]


class EntityOperationFailedException(TaskFailedError):
    """An entity operation called by the orchestration raised.

    A :class:`~dtctl.core.task.TaskFailedError` (as the SDK's failed entity task raises), whose
    ``details`` / ``failure_details`` are the operation's failure: ``details.is_caused_by(ValueError)``.
    """

    def __init__(
        self, entity_instance_id: EntityInstanceId, operation_name: str, failure: FailureDetails
    ) -> None:
        message = (
            f"Operation '{operation_name}' on entity '{entity_instance_id}' failed with error: "
            f"{failure.message}"
        )
        super().__init__(message, failure)
        self.entity_instance_id = entity_instance_id
        self.operation_name = operation_name

    @property
    def failure_details(self) -> FailureDetails:
        return self.details


class _Exits(Protocol):
    def exit_critical_section(self) -> None: ...


class EntityLock:
    """What ``yield ctx.lock_entities([...])`` gives: leaving its ``with`` block releases the locks."""

    __slots__ = ("_context",)

    def __init__(self, context: _Exits) -> None:
        self._context = context

    def __enter__(self) -> EntityLock:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._context.exit_critical_section()


class EntityCallTask(CompletableTask[Any]):
    """The task of ``call_entity``: fails with :class:`EntityOperationFailedException`."""

    __slots__ = ("entity_id", "operation")

    def __init__(self, entity_id: EntityInstanceId, operation: str, hint: Any) -> None:
        super().__init__(f"operation {operation!r} on entity {str(entity_id)!r}", hint)
        self.entity_id = entity_id
        self.operation = operation

    def reject(self, failure: FailureDetails) -> None:
        self._fail(EntityOperationFailedException(self.entity_id, self.operation, failure))


class LockTask(CompletableTask[EntityLock]):
    """The task of ``lock_entities``: completes with the :class:`EntityLock` once every lock is held."""

    __slots__ = ("_lock",)

    def __init__(self, lock: EntityLock) -> None:
        super().__init__("lock_entities")
        self._lock = lock

    def resolve(self, encoded: str | None, converter: payload.DataConverter | None = None) -> None:
        self._finish(self._lock)  # a lock grant carries no payload


def lock_set(entities: Any) -> tuple[str, ...]:
    """The ids of ``entities`` (ids or their ``@name@key`` forms), sorted and without duplicates."""
    if isinstance(entities, (str, EntityInstanceId)):
        raise TypeError("lock_entities takes a list of entity ids")
    ids = {str(EntityInstanceId.of(entity)) for entity in entities}
    if not ids:
        raise ValueError("lock_entities needs at least one entity id")
    return tuple(sorted(ids))


class CriticalSection:
    """The locks an orchestration asked for or holds, and which of them it may call now."""

    __slots__ = ("acquiring", "available", "id", "locks")

    def __init__(self, section_id: str, locks: tuple[str, ...]) -> None:
        self.id = section_id
        self.locks = locks
        self.available: set[str] = set()  # locked and with no call in flight
        self.acquiring = True

    def granted(self) -> None:
        self.acquiring = False
        self.available = set(self.locks)

    def check_call(self, entity_id: str) -> None:
        """A call to ``entity_id`` from inside the section: allowed, or OrchestrationStateError."""
        if entity_id in self.available:
            self.available.discard(entity_id)
            return
        if self.acquiring:
            problem = "must await the completion of the lock request prior to calling any entity"
        elif entity_id in self.locks:
            problem = (
                "must not call an entity from a critical section while a prior call to the same entity "
                "is still pending"
            )
        else:
            problem = (
                "must not call an entity from a critical section if it is not one of the locked entities"
            )
        raise OrchestrationStateError(f"call_entity({entity_id!r}): {problem}")

    def check_signal(self, entity_id: str) -> None:
        if entity_id in self.locks:
            raise OrchestrationStateError(
                f"signal_entity({entity_id!r}): must not signal a locked entity from a critical section"
            )

    def returned(self, entity_id: str) -> None:
        """A call to a locked entity came back: it may be called again."""
        if entity_id in self.locks and not self.acquiring:
            self.available.add(entity_id)
