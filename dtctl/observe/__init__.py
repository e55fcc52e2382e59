"""Observability of a worker process: Prometheus metrics, OpenTelemetry spans, structured logs.

The worker reports what happens to it through one small interface, :class:`Observer`: one call per
event (work leased, an episode decided, an activity run, a commit, a poison verdict). The default is
:data:`NOOP`, whose methods do nothing, so a worker with neither metrics nor tracing pays one method call
per event and imports nothing. :func:`build_observer` turns a worker's settings into the observer it
needs: :mod:`dtctl.observe.metrics` (prometheus-client, the ``metrics`` extra) and
:mod:`dtctl.observe.tracing` (opentelemetry, the ``tracing`` extra) are imported only when enabled.

``kind`` is the kind of work item, as in the hub's work log: ``orchestration``, ``activity``, and
``entity`` once entity work items exist; every metric labelled by kind takes the new value as is.

Seam for ``dtctl serve`` (the sidecar): its work items are the hub's work items, so the server reports
through the same interface (``orchestrations_leased`` / ``episode_decided`` / ``committed`` for the
orchestrator work items it hands to an SDK and the completions it commits, ``run_activity`` around the
activity completions it receives) and serves ``/metrics`` with :func:`dtctl.observe.metrics.serve`. The
protocol's ``TraceContext`` fields carry W3C ``traceparent`` strings: an SDK client's
``CreateInstanceRequest`` trace context goes to the hub as :attr:`NewInstance.trace_context` (see
:func:`dtctl.observe.tracecontext.current_traceparent` for the native client), and the server fills a
work item's ``parentTraceContext`` from :meth:`dtctl.observe.tracing.WorkerTracer.traceparent_for`.
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
        TaskHub,
    )
    from dtctl.runtime.config import WorkerConfig

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


def build_observer(config: WorkerConfig, hub: TaskHub) -> Observer:
    """The observer a worker process's settings ask for: work item ids in JSON log lines, metrics when a
    port is set, tracing when the standard OpenTelemetry variables enable it
    (:func:`dtctl.observe.tracecontext.tracing_requested`)."""
    observers: list[Observer] = []
    if config.log_format == "json":
        from dtctl.observe.logs import LogContext

        observers.append(LogContext())
    if config.metrics_port:
        from dtctl.observe import metrics

        observers.append(metrics.start_worker_metrics(config.metrics_host, config.metrics_port))
    from dtctl.observe import tracecontext

    if tracecontext.tracing_requested():
        from dtctl.observe.tracing import worker_tracer

        tracer = worker_tracer(hub)
        if tracer is not None:
            observers.append(tracer)
    if not observers:
        return NOOP
    return observers[0] if len(observers) == 1 else Fanout(observers)


def require_metrics() -> None:
    """A one-line UsageError naming the install command when prometheus-client is missing."""
    import importlib.util

    if importlib.util.find_spec("prometheus_client") is None:
        from dtctl.errors import UsageError

        raise UsageError("metrics need prometheus-client: pip install 'dtctl[metrics]'")
