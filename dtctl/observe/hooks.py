"""The hooks of the worker loop (:class:`Observer`), their no-op default, and a fan-out of several.

See :mod:`dtctl.observe` for what reports through them and why the default costs nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from dtctl.core.decision import Decision
    from dtctl.hub.base import (
        ActivityResult,
        ActivityWorkItem,
        CheckpointResult,
        OrchestrationWorkItem,
    )

Episode = tuple["OrchestrationWorkItem", "Decision"]


class SlotGauge(Protocol):
    """What a worker tells about its slots (read at scrape time only)."""

    def activity_slots_in_use(self) -> int: ...

    def orchestration_slots_in_use(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Commit:
    """One commit of the worker's loop and what it carried, for :meth:`Observer.committed`."""

    seconds: float
    durable: bool
    episodes: Sequence[Episode]
    outcomes: Sequence[CheckpointResult]
    results: Sequence[ActivityResult]
    accepted: Sequence[bool]


class Observer:
    """Hooks of the worker loop; this base class does nothing (the cost of observability off)."""

    def attach(self, worker_id: str, slots: SlotGauge, limits: tuple[int, int]) -> None:
        """Once, when the worker starts: its id, its slots, (max_orchestrations, max_activities)."""

    def orchestrations_leased(self, items: Sequence[OrchestrationWorkItem], now: int) -> None:
        """After the lease committed (``now``: the hub's clock, microseconds)."""

    def activities_leased(self, items: Sequence[ActivityWorkItem], now: int) -> None:
        """After the lease committed, before the activities start (main thread)."""

    def episode_decided(
        self, item: OrchestrationWorkItem, decision: Decision, started_ns: int, loaded: int | None
    ) -> None:
        """An episode ran (not yet committed); ``loaded``: history events loaded, None when warm."""

    def run_activity(self, item: ActivityWorkItem, call: Callable[[], ActivityResult]) -> ActivityResult:
        """Runs one activity execution (on its pool thread): the observer may wrap it."""
        return call()

    def committed(self, commit: Commit) -> None:
        """After each commit of the loop."""

    def poisoned(self, kind: str, name: str, cause: str) -> None:
        """A work item failed as poison: ``cause`` is lease_limit, crash or runaway."""

    def isolated(self, kind: str, name: str, verdict: str) -> None:
        """An isolated run of a suspect ended with ``verdict`` (done, gave_up, crashed, ran_away)."""

    def close(self) -> None:
        """At the end of the worker: flush what is buffered (spans)."""


NOOP = Observer()


class Fanout(Observer):
    """Several observers behind one (metrics and tracing together)."""

    def __init__(self, observers: Sequence[Observer]) -> None:
        self._all = tuple(observers)

    def attach(self, worker_id: str, slots: SlotGauge, limits: tuple[int, int]) -> None:
        for o in self._all:
            o.attach(worker_id, slots, limits)

    def orchestrations_leased(self, items: Sequence[OrchestrationWorkItem], now: int) -> None:
        for o in self._all:
            o.orchestrations_leased(items, now)

    def activities_leased(self, items: Sequence[ActivityWorkItem], now: int) -> None:
        for o in self._all:
            o.activities_leased(items, now)

    def episode_decided(
        self, item: OrchestrationWorkItem, decision: Decision, started_ns: int, loaded: int | None
    ) -> None:
        for o in self._all:
            o.episode_decided(item, decision, started_ns, loaded)

    def run_activity(self, item: ActivityWorkItem, call: Callable[[], ActivityResult]) -> ActivityResult:
        for o in reversed(self._all):
            call = _wrapped(o, item, call)
        return call()

    def committed(self, commit: Commit) -> None:
        for o in self._all:
            o.committed(commit)

    def poisoned(self, kind: str, name: str, cause: str) -> None:
        for o in self._all:
            o.poisoned(kind, name, cause)

    def isolated(self, kind: str, name: str, verdict: str) -> None:
        for o in self._all:
            o.isolated(kind, name, verdict)

    def close(self) -> None:
        for o in self._all:
            o.close()


def _wrapped(
    observer: Observer, item: ActivityWorkItem, call: Callable[[], ActivityResult]
) -> Callable[[], ActivityResult]:
    return lambda: observer.run_activity(item, call)
