"""Observability of a worker process: Prometheus metrics, OpenTelemetry spans, structured logs.

The worker reports what happens to it through one small interface, :class:`Observer`: one call per
event (work leased, an episode decided, an activity run, a commit, a poison verdict). The default is
:data:`NOOP`, whose methods do nothing, so a worker with neither metrics nor tracing pays one method call
per event and imports nothing. :func:`build_observer` turns a worker's settings into the observer it
needs: :mod:`dtctl.observe.metrics` (prometheus-client, the ``metrics`` extra) and
:mod:`dtctl.observe.tracing` (opentelemetry, the ``tracing`` extra) are imported only when enabled.

``kind`` is the kind of work item, as in the hub's work log: ``orchestration``, ``activity`` and
``entity`` (one entity batch); every metric labelled by kind takes them all.

Seam for ``dtctl serve`` (the sidecar): its work items are the hub's work items, so the server reports
through the same interface (``orchestrations_leased`` / ``episode_decided`` / ``committed`` for the
orchestrator work items it hands to an SDK and the completions it commits, ``run_activity`` around the
activity completions it receives) and serves ``/metrics`` with :func:`dtctl.observe.metrics.serve`. The
protocol's ``TraceContext`` fields carry W3C ``traceparent`` strings: an SDK client's
``CreateInstanceRequest`` trace context goes to the hub as :attr:`NewInstance.trace_context` (see
:func:`dtctl.observe.tracecontext.current_traceparent` for the native client), and the server fills its
work items' trace-context fields with the same placement as :meth:`WorkerTracer.traceparent_for`, from
the hub alone (:mod:`dtctl.serve.tracectx`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dtctl.observe.hooks import NOOP, Commit, Episode, Fanout, Observer, SlotGauge

if TYPE_CHECKING:
    from dtctl.hub.base import TaskHub
    from dtctl.runtime.config import WorkerConfig

__all__ = [
    "NOOP",
    "Commit",
    "Episode",
    "Fanout",
    "Observer",
    "SlotGauge",
    "build_observer",
    "require_metrics",
]


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
