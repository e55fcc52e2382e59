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
  delivery. External events are span events of the episode that consumed them; an event raised by a
  client with a current span (its ``traceparent`` is stored with the message, migration 007) also
  links that episode's span to the sender's span: the sender is in another trace, or in this one as
  a cause rather than a parent, which is what a span link says.

- ``entity NAME OPERATION``: one per entity operation in a committed batch (instance id: the entity
  id), parented to the orchestration span of the calling or signalling orchestration (its instance and
  execution ids travel with the message, so the parent's id is derived as for a sub-orchestration). A
  batch runs its operations in one go, so each operation's span covers its batch's run. A signal from
  a client is parented to the client's span when it had one (its ``traceparent`` travels with the
  message); a signal from another entity, or from a client without a span, starts a trace of its own.

What it costs: dtctl's spans are built finished, as :class:`ReadableSpan` objects, from times it already
has (history, the episode's clock) and handed straight to the span processors; no tracer, sampler call,
id generator or attribute copy per span. ``tracer.start_span`` / ``end`` built every span twice over
(a live span with its locks and bounded attributes, then its readable copy) and was most of the cost.
Only an activity's span is made current while its body runs (a non-recording span with the context
the finished span will have), so the spans the body opens nest under it. By default the only processor
is a :class:`~dtctl.observe.spanpipe.SpanPipe`: dtctl's spans go to it as plain records (not even a
ReadableSpan is built) and are batched, encoded and sent by the worker's exporter process
(``DTCTL_OTEL_EXPORT=inline``: by the processors that
:func:`~dtctl.observe.exporters.span_processors` makes, in this process).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opentelemetry import context as context_api
from opentelemetry import trace
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import Decision as SamplingDecision
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags

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
from dtctl.observe.entityops import operations
from dtctl.observe.exporters import span_processors, worker_resource
from dtctl.observe.hooks import Commit, Observer
from dtctl.observe.spanpipe import SpanPipe, record
from dtctl.observe.tracecontext import (
    TraceParent,
    derived_trace_id,
    orchestration_span_id,
    parse,
)

if TYPE_CHECKING:
    from dtctl.core.decision import Decision
    from dtctl.hub.base import ActivityResult, ActivityWorkItem, InboxMessage, OrchestrationWorkItem, TaskHub
    from dtctl.hub.entity_records import EntityBatch, EntityWorkItem

log = logging.getLogger("dtctl.tracing")
CACHE_SIZE = 4096
SAMPLED = TraceFlags(TraceFlags.SAMPLED)
NOT_SAMPLED = TraceFlags(TraceFlags.DEFAULT)
UNSET = Status(StatusCode.UNSET)
# ``inline``: batch, encode and send spans in the worker process itself, not in an exporter child.
EXPORT_ENV = "DTCTL_OTEL_EXPORT"


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


class SpanSink:
    """Finished spans, built from known times and handed to the span processors directly."""

    def __init__(self, provider: TracerProvider, processors: Sequence[SpanProcessor]) -> None:
        self._resource = provider.resource
        self._scope = InstrumentationScope("dtctl")
        self._processors = tuple(processors)
        # With an export pipe alone (the default), spans go as records: no ReadableSpan is built.
        only = self._processors[0] if len(self._processors) == 1 else None
        self._pipe = only if isinstance(only, SpanPipe) else None
        self._scope_record = (self._scope.name, self._scope.version, self._scope.schema_url, None)
        self._random = RandomIdGenerator()

    def span_id(self) -> int:
        return self._random.generate_span_id()

    def trace_id(self) -> int:
        return self._random.generate_trace_id()

    def emit(
        self,
        name: str,
        context: SpanContext,
        parent: SpanContext | None,
        attributes: Mapping[str, Any],
        times: tuple[int, int],
        *,
        kind: SpanKind = SpanKind.INTERNAL,
        status: Status = UNSET,
        events: Sequence[Event] = (),
        links: Sequence[Link] = (),
    ) -> None:
        if self._pipe is not None:
            self._pipe.add(
                record(
                    name, context, parent, attributes, times, kind, status, events, self._scope_record, links
                )
            )
            return
        span = ReadableSpan(
            name,
            context,
            parent,
            self._resource,
            attributes,
            events,
            links,
            kind,
            None,
            status,
            times[0],
            times[1],
            self._scope,
        )
        for processor in self._processors:
            processor.on_end(span)

    def committed(self) -> None:
        """A commit boundary: the export pipe may write what it buffered."""
        for processor in self._processors:
            if isinstance(processor, SpanPipe):
                processor.committed()


class WorkerTracer(Observer):
    def __init__(self, hub: TaskHub, provider: TracerProvider, processors: Sequence[SpanProcessor]) -> None:
        self._hub = hub
        self._provider = provider
        self._spans = SpanSink(provider, processors)
        self._placements: OrderedDict[str, Placement] = OrderedDict()
        self._started: OrderedDict[tuple[str, str], int] = OrderedDict()  # execution -> start (us)
        self._timers: OrderedDict[tuple[str, int], int] = OrderedDict()  # (instance, task id) -> created
        self._contexts: OrderedDict[tuple[str, str], SpanContext] = OrderedDict()
        self._episodes: dict[str, _Episode] = {}
        self._entity_runs: dict[str, tuple[int, int]] = {}  # entity id -> its batch's (start, end) ns
        self._activity_parents: dict[int, SpanContext] = {}
        self._lock = threading.Lock()

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

    def _child_of(self, parent: SpanContext) -> SpanContext:
        return SpanContext(parent.trace_id, self._spans.span_id(), is_remote=False, trace_flags=SAMPLED)

    def _new_root(self) -> SpanContext | None:
        """A span of a trace of its own (no caller context), or None when the sampler drops it."""
        trace_id = self._spans.trace_id()
        if not self._samples(trace_id):
            return None
        return SpanContext(trace_id, self._spans.span_id(), is_remote=False, trace_flags=SAMPLED)

    # --- hooks ----------------------------------------------------------------------------------------

    def orchestrations_leased(self, items: Sequence[OrchestrationWorkItem], now: int) -> None:
        for item in items:
            for message in item.messages:
                if isinstance(message.event, ExecutionStarted):
                    key = (item.instance_id, item.execution_id)
                    _remember(self._started, key, message.event.timestamp)

    def activities_leased(self, items: Sequence[ActivityWorkItem], now: int) -> None:
        parents = {i.id: self.orchestration_context(i.instance_id, i.execution_id) for i in items}
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
        if parent is None:
            context = self._new_root()
        elif parent.trace_flags.sampled:
            context = self._child_of(parent)
        else:
            context = None
        if context is None:
            return call()  # a workflow the sampler dropped costs no span at all
        # The body's own spans nest under this one: current while it runs, exported once it ended.
        token = context_api.attach(trace.set_span_in_context(trace.NonRecordingSpan(context)))
        start = time.time_ns()
        try:
            result = call()
        finally:
            context_api.detach(token)
        end = time.time_ns()
        status = UNSET
        attributes = {
            "dtctl.instance_id": item.instance_id,
            "dtctl.name": item.name,
            "dtctl.execution_id": item.execution_id,
            "dtctl.task_id": item.task_id,
            "dtctl.dequeue_count": item.dequeue_count,
            "dtctl.status": "completed",
        }
        if isinstance(result.event, TaskFailed):
            attributes["dtctl.status"] = "failed"
            status = Status(StatusCode.ERROR, result.event.failure.message)
        name = f"activity {item.name}"
        self._spans.emit(
            name, context, parent, attributes, (start, end), kind=SpanKind.CONSUMER, status=status
        )
        return result

    def run_entity(self, item: EntityWorkItem, call: Callable[[], EntityBatch]) -> EntityBatch:
        start = time.time_ns()
        batch = call()
        self._entity_runs[item.entity_id] = (start, time.time_ns())
        for message in item.messages:  # the callers' placements: hub reads, if any, before the commit
            if message.sender_instance_id and message.sender_execution_id:
                self.orchestration_context(message.sender_instance_id, message.sender_execution_id)
        return batch

    def committed(self, commit: Commit) -> None:
        end = time.time_ns()
        for (item, decision), outcome in zip(commit.episodes, commit.outcomes, strict=False):
            episode = self._episodes.pop(item.instance_id, None)
            if not outcome.committed or episode is None:
                continue
            context = self.orchestration_context(item.instance_id, item.execution_id)
            if not context.trace_flags.sampled:
                continue  # a workflow the sampler dropped costs no span at all
            self._episode_span(item, decision, context, episode, end)
            self._timer_spans(item, decision, context, end)
            if decision.status in TERMINAL_STATUSES or decision.status == CONTINUED_AS_NEW:
                self._orchestration_span(item, decision, context, end)
        for batch, stored in zip(commit.batches, commit.stored, strict=False):
            times = self._entity_runs.pop(batch.item.entity_id, None)
            if stored and times is not None:
                self._entity_spans(batch, times)
        self._spans.committed()

    def close(self) -> None:
        self._provider.shutdown()

    # --- spans emitted after a commit ----------------------------------------------------------------

    def _episode_span(
        self,
        item: OrchestrationWorkItem,
        decision: Decision,
        parent: SpanContext,
        episode: _Episode,
        end: int,
    ) -> None:
        times = (episode.start_ns, end)
        attributes = {
            "dtctl.instance_id": item.instance_id,
            "dtctl.name": item.name,
            "dtctl.execution_id": item.execution_id,
            "dtctl.status": str(decision.status),  # a plain str: the export pipe marshals it
            "dtctl.episode.cache": "warm" if episode.loaded is None else "cold",
        }
        raised = [m for m in item.messages if isinstance(m.event, EventRaised)]
        events = [Event("event_raised", {"dtctl.event.name": _event_name(m)}, times[0]) for m in raised]
        links = sender_links(raised)
        name = f"episode {item.name}"
        context = self._child_of(parent)
        self._spans.emit(name, context, parent, attributes, times, events=events, links=links)

    def _timer_spans(
        self, item: OrchestrationWorkItem, decision: Decision, parent: SpanContext, end: int
    ) -> None:
        for event in decision.new_history:
            if isinstance(event, TimerCreated):
                _remember(self._timers, (item.instance_id, event.task_id), event.timestamp)
        for message in item.messages:
            fired = message.event
            if not isinstance(fired, TimerFired):
                continue
            created = self._timers.pop((item.instance_id, fired.task_id), fired.fire_at)
            attributes = {
                "dtctl.instance_id": item.instance_id,
                "dtctl.name": item.name,
                "dtctl.execution_id": item.execution_id,
                "dtctl.task_id": fired.task_id,
                "dtctl.timer.fire_at_us": fired.fire_at,
            }
            times = (created * 1000, max(end, created * 1000))
            self._spans.emit("timer", self._child_of(parent), parent, attributes, times)

    def _orchestration_span(
        self, item: OrchestrationWorkItem, decision: Decision, context: SpanContext, end: int
    ) -> None:
        placed = self.placement(item.instance_id, item.execution_id)
        started = self._started.pop((item.instance_id, item.execution_id), placed.created_at)
        attributes = {
            "dtctl.instance_id": item.instance_id,
            "dtctl.name": item.name,
            "dtctl.execution_id": item.execution_id,
            "dtctl.status": str(decision.status),  # a plain str: the export pipe marshals it
        }
        parent = None
        if placed.parent_span_id is not None:
            parent = SpanContext(placed.trace_id, placed.parent_span_id, is_remote=True, trace_flags=SAMPLED)
        status = UNSET
        if decision.status == FAILED and decision.failure is not None:
            status = Status(StatusCode.ERROR, decision.failure.message)
        own = SpanContext(context.trace_id, context.span_id, is_remote=False, trace_flags=SAMPLED)
        name = f"orchestration {item.name}"
        times = (started * 1000, end)
        self._spans.emit(name, own, parent, attributes, times, kind=SpanKind.SERVER, status=status)

    def _entity_spans(self, batch: EntityBatch, times: tuple[int, int]) -> None:
        item = batch.item
        done = operations(batch)
        for operation in done:
            message = operation.message
            parent: SpanContext | None = None
            if message.sender_instance_id and message.sender_execution_id:
                parent = self.orchestration_context(message.sender_instance_id, message.sender_execution_id)
            elif message.trace_context:
                parent = remote_context(message.trace_context)
            if parent is not None and not parent.trace_flags.sampled:
                continue
            context = self._child_of(parent) if parent is not None else self._new_root()
            if context is None:
                continue
            attributes: dict[str, Any] = {
                "dtctl.instance_id": item.entity_id,
                "dtctl.name": item.name,
                "dtctl.entity.operation": message.operation or "",
                "dtctl.entity.message": message.kind.value,
                "dtctl.entity.batch_operations": len(done),
                "dtctl.status": "completed" if operation.failure is None else "failed",
            }
            if message.sender_instance_id:
                attributes["dtctl.entity.caller_instance_id"] = message.sender_instance_id
            status = (
                UNSET if operation.failure is None else Status(StatusCode.ERROR, operation.failure.message)
            )
            name = f"entity {item.name} {message.operation}"
            self._spans.emit(name, context, parent, attributes, times, kind=SpanKind.CONSUMER, status=status)


def remote_context(traceparent: str | None) -> SpanContext | None:
    """A stored ``traceparent`` as the context of a span in another process (None: absent or malformed)."""
    found = parse(traceparent)
    if found is None:
        return None
    flags = SAMPLED if found.sampled else NOT_SAMPLED
    return SpanContext(found.trace_id, found.span_id, is_remote=True, trace_flags=flags)


def sender_links(messages: Sequence[InboxMessage]) -> list[Link]:
    """Links from the span of the episode that consumed raised events to their senders' spans."""
    links: list[Link] = []
    for message in messages:
        sender = remote_context(message.trace_context)
        if sender is not None:
            name = _event_name(message)
            links.append(Link(sender, {"dtctl.link": "event_raised", "dtctl.event.name": name}))
    return links


def _event_name(message: InboxMessage) -> str:
    event = message.event
    return event.name if isinstance(event, EventRaised) else ""


def _remember(cache: OrderedDict[Any, Any], key: Any, value: Any) -> None:
    cache[key] = value
    while len(cache) > CACHE_SIZE:
        cache.popitem(last=False)


# --- configuration from the environment -----------------------------------------------------------------


def _exports_in_process() -> bool:
    return os.environ.get(EXPORT_ENV, "process").strip().lower() == "inline"


def worker_tracer(hub: TaskHub) -> WorkerTracer | None:
    """A tracer for this worker process, installed as the global provider so the spans activities open
    nest under theirs; None when no exporter could be set up. Its spans are exported by a child process
    (:mod:`dtctl.observe.spanpipe`) unless ``DTCTL_OTEL_EXPORT=inline``."""
    processors = span_processors() if _exports_in_process() else [SpanPipe()]
    if not processors:
        return None
    provider = TracerProvider(resource=worker_resource(os.getpid()))
    for processor in processors:
        provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    return WorkerTracer(hub, provider, processors)
