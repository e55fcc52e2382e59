"""W3C trace context on the sidecar protocol: what SDK workers get, so one trace spans serve and SDKs.

An SDK client sends its span's context in ``CreateInstanceRequest.parentTraceContext``; it is stored as
the instance's trace context (migration 004), as dtctl's own client does. Work items carry the
placement dtctl's tracing workers compute (:mod:`dtctl.observe.tracing`), so SDK workers and native
dtctl workers put an instance's spans in the same trace under the same orchestration span:

- ``ExecutionStartedEvent.parentTraceContext``: the parent of the orchestration span: the caller's
  stored span, or for a sub-orchestration its parent's orchestration span.
- ``OrchestratorRequest.orchestrationTraceContext``: the orchestration span's id, derived from the
  instance and execution ids (:func:`~dtctl.observe.tracecontext.orchestration_span_id`), and its start
  (the execution's start). The SDK reuses that id on every episode instead of inventing one per
  dispatch, so nothing of what it returns needs storing.
- ``ActivityRequest.parentTraceContext``: the orchestration span, the parent of the activity's span.

An instance without a caller context (and without a traced parent) gets no context: the SDK then
traces it as a trace of its own. ``RaiseEventRequest`` has no trace-context field in the protocol, so
an event raised through ``serve`` carries none.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from google.protobuf import wrappers_pb2

from dtctl.hub.base import TaskHub
from dtctl.observe.tracecontext import TraceParent, orchestration_span_id, parse
from dtctl.serve.proto import orchestrator_service_pb2 as pb

CACHE_SIZE = 4096
_SEARCHED = 4  # execution_started is the first or second event of an execution's history


@dataclass(frozen=True, slots=True)
class Placement:
    execution_id: str
    parent: TraceParent  # the orchestration span's parent
    orchestration: TraceParent  # the orchestration span itself


def stored_context(request: pb.CreateInstanceRequest) -> str | None:
    """The caller's traceparent of a StartInstance request, when it sent a valid one."""
    if not request.HasField("parentTraceContext"):
        return None
    found = parse(request.parentTraceContext.traceParent)
    return None if found is None else found.header()


def proto_context(context: TraceParent) -> pb.TraceContext:
    return pb.TraceContext(traceParent=context.header(), spanID=f"{context.span_id:016x}")


class TraceContexts:
    """The placements of the instances serve hands out, read from the hub once per execution."""

    def __init__(self, hub: TaskHub) -> None:
        self._hub = hub
        self._cache: OrderedDict[str, tuple[str, Placement | None]] = OrderedDict()

    def placement(self, instance_id: str, execution_id: str) -> Placement | None:
        found = self._cache.get(instance_id)
        if found is not None and found[0] == execution_id:
            self._cache.move_to_end(instance_id)
            return found[1]
        placed = self._place(instance_id, execution_id, depth=0)
        self._cache[instance_id] = (execution_id, placed)
        while len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return placed

    def _place(self, instance_id: str, execution_id: str, depth: int) -> Placement | None:
        record = self._hub.trace_record(instance_id)
        if record is None or depth > 64:
            return None
        parent = parse(record.trace_context)
        if parent is None and record.parent_instance_id and record.parent_execution_id:
            above = self._place(record.parent_instance_id, record.parent_execution_id, depth + 1)
            if above is not None:
                parent = above.orchestration
        if parent is None:
            return None
        span_id = orchestration_span_id(instance_id, execution_id)
        return Placement(execution_id, parent, TraceParent(parent.trace_id, span_id, parent.sampled))

    def annotate_orchestration(self, request: pb.OrchestratorRequest) -> None:
        """Put the instance's trace context into an orchestrator work item (nothing when it has none)."""
        placed = self.placement(request.instanceId, request.executionId.value)
        if placed is None:
            return
        for events in (request.pastEvents, request.newEvents):
            for event in events[:_SEARCHED]:
                if event.HasField("executionStarted"):
                    event.executionStarted.parentTraceContext.CopyFrom(proto_context(placed.parent))
                    request.orchestrationTraceContext.CopyFrom(
                        pb.OrchestrationTraceContext(
                            spanID=wrappers_pb2.StringValue(value=f"{placed.orchestration.span_id:016x}"),
                            spanStartTime=event.timestamp,
                        )
                    )
                    return

    def annotate_activity(self, request: pb.ActivityRequest) -> None:
        instance = request.orchestrationInstance
        placed = self.placement(instance.instanceId, instance.executionId.value)
        if placed is not None:
            request.parentTraceContext.CopyFrom(proto_context(placed.orchestration))
