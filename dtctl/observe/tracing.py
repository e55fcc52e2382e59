"""OpenTelemetry spans of a worker process (the ``tracing`` extra: opentelemetry-api and -sdk).

Imported only when :func:`dtctl.observe.tracecontext.tracing_requested` says so. Configured by the
standard variables: ``OTEL_TRACES_EXPORTER`` (``otlp``, ``console``, or any exporter registered under
the ``opentelemetry_traces_exporter`` entry point), ``OTEL_EXPORTER_OTLP_ENDPOINT`` /
``OTEL_EXPORTER_OTLP_PROTOCOL`` (read by the OTLP exporter), ``OTEL_SERVICE_NAME`` and
``OTEL_RESOURCE_ATTRIBUTES`` (default service name ``dtctl-worker``), ``OTEL_TRACES_SAMPLER``, and
``OTEL_SDK_DISABLED``. ``DTCTL_OTEL_SPAN_EXPORTER=module:factory`` names a factory returning a
SpanExporter (batched) or a SpanProcessor (used as is), for tests and custom pipelines.

The spans of one instance, all in the trace of the caller of ``start_instance`` (its ``traceparent`` is
stored with the instance; a sub-orchestration is in its parent's trace):

- ``orchestration NAME``: one per execution, exported once, by the worker whose checkpoint ends it,
  starting when the execution was started (from the hub). Its span id is derived from the instance and
  execution ids, so every process parents to it before it exists. Its parent is the caller's span, or
  for a sub-orchestration its parent's orchestration span.
- ``episode NAME``: one per live episode, exported after its checkpoint committed (a refused checkpoint
  exports none; replays happen inside episodes and are never spans of their own).
- ``activity NAME``: one per execution (a retry is another execution; an execution whose process died
  is lost with it), current while the activity body runs, so spans the body opens nest under it.
- ``timer``: one per timer that fired, from when it was created (when this process saw it) to its
  delivery. External events are span events of the episode that consumed them.

Entity operations (when entities land) get ``entity NAME`` spans the same way: an ``entity_started``
hook parented to the orchestration span of the caller, or to the signalling caller's context.
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import Decision as SamplingDecision
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from dtctl.core.history import (
    CONTINUED_AS_NEW,
    FAILED,
    TERMINAL_STATUSES,
    EventRaised,
    ExecutionStarted,
    TaskFailed,
    TimerCreated,
    TimerFired,
)
from dtctl.observe.hooks import Commit, Observer
from dtctl.observe.tracecontext import (
    EXPORTER_FACTORY_ENV,
    TraceParent,
    derived_trace_id,
    orchestration_span_id,
    parse,
)

if TYPE_CHECKING:
    from dtctl.core.decision import Decision
    from dtctl.hub.base import ActivityResult, ActivityWorkItem, OrchestrationWorkItem, TaskHub

log = logging.getLogger("dtctl.tracing")
CACHE_SIZE = 4096
SAMPLED = TraceFlags(TraceFlags.SAMPLED)
NOT_SAMPLED = TraceFlags(TraceFlags.DEFAULT)


class _Ids(RandomIdGenerator):
    """Random ids, except for the one span whose ids dtctl derives (an orchestration's)."""

    def __init__(self) -> None:
        self._forced = threading.local()

    def force(self, trace_id: int | None, span_id: int) -> None:
        self._forced.trace_id, self._forced.span_id = trace_id, span_id

    def generate_span_id(self) -> int:
        forced: int | None = getattr(self._forced, "span_id", None)
        if forced is None:
            return super().generate_span_id()
        self._forced.span_id = None
        return forced

    def generate_trace_id(self) -> int:
        forced: int | None = getattr(self._forced, "trace_id", None)
        if forced is None:
            return super().generate_trace_id()
        self._forced.trace_id = None
        return forced


@dataclass(frozen=True, slots=True)
class Placement:
    """Where an instance's spans go: its trace, and the parent of its orchestration span."""

    trace_id: int
    parent_span_id: int | None  # None: the orchestration span is the trace's root
    created_at: int  # microseconds: the start of its first execution
    sampled: bool = True  # the caller's decision, or the sampler's for a trace of its own


@dataclass(slots=True)
class _Episode:
    start_ns: int
    loaded: int | None


class WorkerTracer(Observer):
    def __init__(self, hub: TaskHub, provider: TracerProvider, ids: _Ids) -> None:
        self._hub = hub
        self._provider = provider
        self._ids = ids
        self._tracer = provider.get_tracer("dtctl")
        self._placements: OrderedDict[str, Placement] = OrderedDict()
        self._started: OrderedDict[tuple[str, str], int] = OrderedDict()  # execution -> start (us)
        self._timers: OrderedDict[tuple[str, int], int] = OrderedDict()  # (instance, task id) -> created
        self._contexts: OrderedDict[tuple[str, str], SpanContext] = OrderedDict()
        self._episodes: dict[str, _Episode] = {}
        self._activity_parents: dict[int, trace.Span] = {}
        self._lock = threading.Lock()
        self._worker_id = ""

    def attach(self, worker_id: str, slots: Any, limits: tuple[int, int]) -> None:
        self._worker_id = worker_id

    # --- where spans go -----------------------------------------------------------------------------

    def placement(self, instance_id: str, execution_id: str) -> Placement:
        """The trace of an instance: the caller's stored context, its parent's, or one derived."""
        found = self._placements.get(instance_id)
        if found is not None:
            return found
        record = self._hub.trace_record(instance_id)
        caller = parse(record.trace_context) if record else None
        created = record.created_at if record else time.time_ns() // 1000
        if caller is not None:
            placed = Placement(caller.trace_id, caller.span_id, created, caller.sampled)
        elif record is not None and record.parent_instance_id and record.parent_execution_id:
            parent = self.placement(record.parent_instance_id, record.parent_execution_id)
            span_id = orchestration_span_id(record.parent_instance_id, record.parent_execution_id)
            placed = Placement(parent.trace_id, span_id, created, parent.sampled)
        else:
            trace_id = derived_trace_id(instance_id, execution_id)
            placed = Placement(trace_id, None, created, self._samples(trace_id))
        _remember(self._placements, instance_id, placed)
        return placed

    def orchestration_context(self, instance_id: str, execution_id: str) -> SpanContext:
        key = (instance_id, execution_id)
        found = self._contexts.get(key)
        if found is None:
            placed = self.placement(instance_id, execution_id)
            span_id = orchestration_span_id(instance_id, execution_id)
            flags = SAMPLED if placed.sampled else NOT_SAMPLED
            found = SpanContext(placed.trace_id, span_id, is_remote=True, trace_flags=flags)
            _remember(self._contexts, key, found)
        return found

    def _samples(self, trace_id: int) -> bool:
        """The sampler's decision for a trace dtctl starts: a trace-id ratio decides the same way in
        every process, so all of an instance's spans are kept or dropped together."""
        result = self._provider.sampler.should_sample(None, trace_id, "orchestration")
        return result.decision is SamplingDecision.RECORD_AND_SAMPLE

    def traceparent_for(self, instance_id: str, execution_id: str) -> str:
        """The W3C traceparent a work item of this instance carries (``dtctl serve``'s seam)."""
        context = self.orchestration_context(instance_id, execution_id)
        return TraceParent(context.trace_id, context.span_id, context.trace_flags.sampled).header()

    def _parent(self, instance_id: str, execution_id: str) -> Any:
        span = trace.NonRecordingSpan(self.orchestration_context(instance_id, execution_id))
        return trace.set_span_in_context(span)

    # --- hooks ----------------------------------------------------------------------------------------

    def orchestrations_leased(self, items: Sequence[OrchestrationWorkItem], now: int) -> None:
        for item in items:
            for message in item.messages:
                if isinstance(message.event, ExecutionStarted):
                    key = (item.instance_id, item.execution_id)
                    _remember(self._started, key, message.event.timestamp)

    def activities_leased(self, items: Sequence[ActivityWorkItem], now: int) -> None:
        parents = {
            i.id: trace.NonRecordingSpan(self.orchestration_context(i.instance_id, i.execution_id))
            for i in items
        }
        with self._lock:
            self._activity_parents.update(parents)

    def episode_decided(
        self, item: OrchestrationWorkItem, decision: Decision, started_ns: int, loaded: int | None
    ) -> None:
        wall = time.time_ns() - (time.perf_counter_ns() - started_ns)
        self._episodes[item.instance_id] = _Episode(wall, loaded)
        self.placement(item.instance_id, item.execution_id)  # a hub read, if any, before the commit

    def run_activity(self, item: ActivityWorkItem, call: Callable[[], ActivityResult]) -> ActivityResult:
        with self._lock:
            parent = self._activity_parents.pop(item.id, None)
        if parent is not None and not parent.get_span_context().trace_flags.sampled:
            return call()  # a workflow the sampler dropped costs no span at all
        context = trace.set_span_in_context(parent) if parent is not None else None
        attributes = {**_ids(item.instance_id, item.name, item.execution_id), "dtctl.task_id": item.task_id}
        attributes["dtctl.dequeue_count"] = item.dequeue_count
        with self._tracer.start_as_current_span(
            f"activity {item.name}",
            context=context,
            kind=SpanKind.CONSUMER,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            result = call()
            if isinstance(result.event, TaskFailed):
                span.set_attribute("dtctl.status", "failed")
                span.set_status(Status(StatusCode.ERROR, result.event.failure.message))
            else:
                span.set_attribute("dtctl.status", "completed")
        return result

    def committed(self, commit: Commit) -> None:
        end = time.time_ns()
        for (item, decision), outcome in zip(commit.episodes, commit.outcomes, strict=False):
            episode = self._episodes.pop(item.instance_id, None)
            if not outcome.committed or episode is None:
                continue
            if not self.placement(item.instance_id, item.execution_id).sampled:
                continue  # a workflow the sampler dropped costs no span at all
            self._episode_span(item, decision, episode, end)
            self._timer_spans(item, decision, end)
            if decision.status in TERMINAL_STATUSES or decision.status == CONTINUED_AS_NEW:
                self._orchestration_span(item, decision, end)

    def close(self) -> None:
        self._provider.shutdown()

    # --- spans emitted after a commit ----------------------------------------------------------------

    def _episode_span(
        self, item: OrchestrationWorkItem, decision: Decision, episode: _Episode, end: int
    ) -> None:
        attributes = {**_ids(item.instance_id, item.name, item.execution_id), "dtctl.status": decision.status}
        attributes["dtctl.episode.cache"] = "warm" if episode.loaded is None else "cold"
        span = self._tracer.start_span(
            f"episode {item.name}",
            context=self._parent(item.instance_id, item.execution_id),
            attributes=attributes,
            start_time=episode.start_ns,
        )
        for message in item.messages:
            if isinstance(message.event, EventRaised):
                span.add_event("event_raised", {"dtctl.event.name": message.event.name})
        span.end(end_time=end)

    def _timer_spans(self, item: OrchestrationWorkItem, decision: Decision, end: int) -> None:
        for event in decision.new_history:
            if isinstance(event, TimerCreated):
                _remember(self._timers, (item.instance_id, event.task_id), event.timestamp)
        for message in item.messages:
            fired = message.event
            if not isinstance(fired, TimerFired):
                continue
            created = self._timers.pop((item.instance_id, fired.task_id), fired.fire_at)
            attributes = {
                **_ids(item.instance_id, item.name, item.execution_id),
                "dtctl.task_id": fired.task_id,
            }
            attributes["dtctl.timer.fire_at_us"] = fired.fire_at
            span = self._tracer.start_span(
                "timer",
                context=self._parent(item.instance_id, item.execution_id),
                attributes=attributes,
                start_time=created * 1000,
            )
            span.end(end_time=max(end, created * 1000))

    def _orchestration_span(self, item: OrchestrationWorkItem, decision: Decision, end: int) -> None:
        placed = self.placement(item.instance_id, item.execution_id)
        started = self._started.pop((item.instance_id, item.execution_id), placed.created_at)
        attributes = {**_ids(item.instance_id, item.name, item.execution_id), "dtctl.status": decision.status}
        if placed.parent_span_id is None:
            context = None
            self._ids.force(placed.trace_id, orchestration_span_id(item.instance_id, item.execution_id))
        else:
            flags = SAMPLED if placed.sampled else NOT_SAMPLED
            parent = SpanContext(placed.trace_id, placed.parent_span_id, is_remote=True, trace_flags=flags)
            context = trace.set_span_in_context(trace.NonRecordingSpan(parent))
            self._ids.force(None, orchestration_span_id(item.instance_id, item.execution_id))
        span = self._tracer.start_span(
            f"orchestration {item.name}",
            context=context,
            kind=SpanKind.SERVER,
            attributes=attributes,
            start_time=started * 1000,
        )
        if decision.status == FAILED and decision.failure is not None:
            span.set_status(Status(StatusCode.ERROR, decision.failure.message))
        span.end(end_time=end)


def _ids(instance_id: str, name: str, execution_id: str) -> dict[str, Any]:
    return {"dtctl.instance_id": instance_id, "dtctl.name": name, "dtctl.execution_id": execution_id}


def _remember(cache: OrderedDict[Any, Any], key: Any, value: Any) -> None:
    cache[key] = value
    while len(cache) > CACHE_SIZE:
        cache.popitem(last=False)


# --- configuration from the environment -----------------------------------------------------------------


def _factory_processors(spec: str) -> list[SpanProcessor]:
    module, _, attribute = spec.partition(":")
    made = getattr(importlib.import_module(module), attribute or "exporter")()
    return [made if isinstance(made, SpanProcessor) else BatchSpanProcessor(made)]


def _named_exporter(name: str) -> SpanExporter:
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    if name == "otlp":
        protocol = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or os.environ.get(
            "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"
        )
        transport = "grpc" if protocol.strip() == "grpc" else "http"
        module = importlib.import_module(f"opentelemetry.exporter.otlp.proto.{transport}.trace_exporter")
        exporter: SpanExporter = module.OTLPSpanExporter()
        return exporter
    from importlib.metadata import entry_points

    for entry in entry_points(group="opentelemetry_traces_exporter", name=name):
        made: SpanExporter = entry.load()()
        return made
    raise LookupError(f"no OpenTelemetry span exporter named {name!r}")


def span_processors() -> list[SpanProcessor]:
    """The processors the environment asks for (an exporter that cannot load is logged and skipped)."""
    factory = os.environ.get(EXPORTER_FACTORY_ENV)
    if factory:
        return _factory_processors(factory)
    processors: list[SpanProcessor] = []
    for name in os.environ.get("OTEL_TRACES_EXPORTER", "").split(","):
        name = name.strip().lower()
        if not name or name == "none":
            continue
        try:
            processors.append(BatchSpanProcessor(_named_exporter(name)))
        except (ImportError, LookupError) as exc:
            log.error(
                "tracing: span exporter %r unavailable (%s); install 'dtctl[tracing]' and its exporter",
                name,
                exc,
            )
    return processors


def worker_tracer(hub: TaskHub) -> WorkerTracer | None:
    """A tracer for this worker process, installed as the global provider so the spans activities open
    nest under theirs; None when no exporter could be set up."""
    processors = span_processors()
    if not processors:
        return None
    resource = Resource.create({} if os.environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: "dtctl-worker"})
    ids = _Ids()
    provider = TracerProvider(resource=resource, id_generator=ids)
    for processor in processors:
        provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    return WorkerTracer(hub, provider, ids)
