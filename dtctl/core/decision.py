"""What one orchestration episode decided: new actions, the history to append, the resulting status.

The replay engine (:mod:`dtctl.core.replay`) produces a :class:`Decision`; a hub turns it into one
checkpoint transaction. Payloads here are already-encoded JSON text.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dtctl.core.failure import FailureDetails
from dtctl.core.history import HistoryEvent


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduleTask:
    """Enqueue an activity work item."""

    task_id: int
    name: str
    input: str | None = None
    tags: dict[str, str] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateTimer:
    """Enqueue a ``timer_fired`` event that becomes visible at ``fire_at`` (epoch µs, UTC)."""

    task_id: int
    fire_at: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelTimer:
    """Delete the pending ``timer_fired`` of timer ``task_id`` (created in an earlier episode)."""

    task_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class StartSubOrchestration:
    """Create the child instance with a parent link back to this instance and ``task_id``."""

    task_id: int
    name: str
    instance_id: str
    input: str | None = None
    version: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SendEvent:
    """Deliver an ``event_raised`` to another instance (dropped if it is missing or finished)."""

    task_id: int
    instance_id: str
    name: str
    data: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CallEntity:
    """Send a ``call`` to entity ``entity_id`` (``@name@key``); its response completes ``task_id``
    with ``entity_operation_completed`` / ``entity_operation_failed``."""

    task_id: int
    entity_id: str
    operation: str
    input: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SignalEntity:
    """Send a one-way ``signal`` to entity ``entity_id``, visible at ``fire_at`` (epoch µs) or now."""

    task_id: int
    entity_id: str
    operation: str
    input: str | None = None
    fire_at: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LockEntities:
    """Ask for the locks of ``entity_ids`` (sorted, de-duplicated): the hub sends one ``lock`` message
    to ``entity_ids[0]``; each entity forwards it to the next once it holds its lock, and the last one
    answers ``entity_lock_granted`` for ``task_id``."""

    task_id: int
    critical_section_id: str
    entity_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class UnlockEntities:
    """Release a critical section's locks: the hub sends one ``unlock`` message to each entity."""

    task_id: int
    critical_section_id: str
    entity_ids: tuple[str, ...]


EntityAction = CallEntity | SignalEntity | LockEntities | UnlockEntities
Action = ScheduleTask | CreateTimer | StartSubOrchestration | SendEvent | CancelTimer | EntityAction


@dataclass(frozen=True, slots=True, kw_only=True)
class ContinueAsNew:
    """How the next execution starts: its input and the events carried over (``save_events``)."""

    execution_id: str  # chosen deterministically by replay, so a re-run episode picks the same one
    input: str | None = None
    carryover_events: tuple[HistoryEvent, ...] = ()
    version: str | None = None  # the next execution's version


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """The outcome of one episode.

    ``status`` is RUNNING, SUSPENDED, COMPLETED, FAILED, TERMINATED or CONTINUED_AS_NEW.
    ``new_history`` is exactly what the checkpoint appends to the current execution's history, in
    order: the episode's ``orchestrator_started``, the new events it consumed, the scheduling events of
    ``actions``, and a final ``execution_completed`` / ``continued_as_new`` when the execution ended.
    ``actions`` are only the actions *new* in this episode (replayed ones were dispatched before).
    """

    status: str
    actions: tuple[Action, ...] = ()
    new_history: tuple[HistoryEvent, ...] = ()
    custom_status: str | None = None
    output: str | None = None
    failure: FailureDetails | None = None
    continue_as_new: ContinueAsNew | None = None
    # Debug aid only: replay-safe log lines are emitted by user code, not collected here.
    notes: tuple[str, ...] = field(default=())
