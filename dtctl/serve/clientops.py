"""The client RPCs (start, query, raise, terminate, purge, …) as calls on a hub.

Each function takes a hub and a request message and returns the response message; it raises
:class:`RpcFailure` with a gRPC status for a bad request, before changing anything. dtctl errors from the
hub (not found, conflict) are mapped to status codes by the servicer.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

from google.protobuf import wrappers_pb2

from dtctl.core.history import TERMINAL_STATUSES, SubOrchestrationCreated
from dtctl.errors import InstanceAlreadyExists
from dtctl.hub.base import InstanceQuery, InstanceState, NewInstance, PurgeQuery, TaskHub
from dtctl.serve import convert
from dtctl.serve.proto import orchestrator_service_pb2 as pb
from dtctl.serve.tracectx import stored_context

MAX_PAGE = 1000
HISTORY_CHUNK_BYTES = 1 << 20  # well under gRPC's default 4 MB message limit


class RpcFailure(Exception):
    """A request the server refuses; ``code`` is the name of a ``grpc.StatusCode``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _statuses(values: object) -> tuple[str, ...]:
    try:
        return tuple(sorted({convert.status_from_proto(int(v)) for v in values}))  # type: ignore[attr-defined]
    except ValueError as error:
        raise RpcFailure("INVALID_ARGUMENT", str(error)) from None


def require_id(instance_id: str) -> str:
    if not instance_id:
        raise RpcFailure("INVALID_ARGUMENT", "instanceId is required")
    return instance_id


# --- start -------------------------------------------------------------------------------------------------


def start_instance(hub: TaskHub, request: pb.CreateInstanceRequest) -> pb.CreateInstanceResponse:
    if not request.name:
        raise RpcFailure("INVALID_ARGUMENT", "name (the orchestration to start) is required")
    instance_id = request.instanceId or uuid.uuid4().hex
    start_at = (
        convert.micros(request.scheduledStartTimestamp)
        if request.HasField("scheduledStartTimestamp")
        else None
    )
    new = NewInstance(
        instance_id=instance_id,
        name=request.name,
        input=convert.optional_text(request, "input"),
        start_at=start_at,
        version=convert.optional_text(request, "version") or None,
        tags=dict(request.tags) or None,
        trace_context=stored_context(request),
    )
    replaceable = set(_statuses(request.orchestrationIdReusePolicy.replaceableStatus))
    existing = hub.get_instance(instance_id, include_payloads=False)
    if existing is not None and existing.status not in replaceable:
        raise RpcFailure(
            "ALREADY_EXISTS",
            f"orchestration instance {instance_id!r} already exists and is {existing.status}",
        )
    if existing is not None and existing.status not in TERMINAL_STATUSES:
        raise RpcFailure(
            "FAILED_PRECONDITION",
            f"instance {instance_id!r} is {existing.status}; dtctl replaces only finished instances "
            "(terminate it first)",
        )
    try:
        hub.create_instances([new], if_exists="replace" if existing is not None else "fail")
    except InstanceAlreadyExists as error:  # created meanwhile by someone else
        raise RpcFailure("ALREADY_EXISTS", error.message) from None
    return pb.CreateInstanceResponse(instanceId=instance_id)


# --- read --------------------------------------------------------------------------------------------------


def get_instance(hub: TaskHub, request: pb.GetInstanceRequest) -> pb.GetInstanceResponse:
    state = hub.get_instance(require_id(request.instanceId), include_payloads=request.getInputsAndOutputs)
    return instance_response(state, request.getInputsAndOutputs)


def instance_response(state: InstanceState | None, include_payloads: bool) -> pb.GetInstanceResponse:
    if state is None:
        return pb.GetInstanceResponse(exists=False)
    return pb.GetInstanceResponse(
        exists=True, orchestrationState=convert.orchestration_state(state, include_payloads=include_payloads)
    )


def query_instances(hub: TaskHub, request: pb.QueryInstancesRequest) -> pb.QueryInstancesResponse:
    q = request.query
    limit = q.maxInstanceCount if q.maxInstanceCount > 0 else 100
    page = hub.list_instances(
        InstanceQuery(
            statuses=_statuses(q.runtimeStatus),
            prefix=convert.optional_text(q, "instanceIdPrefix") or None,
            created_after=convert.micros(q.createdTimeFrom) if q.HasField("createdTimeFrom") else None,
            created_before=convert.micros(q.createdTimeTo) if q.HasField("createdTimeTo") else None,
            limit=min(limit, MAX_PAGE),
            cursor=convert.optional_text(q, "continuationToken") or None,
            include_payloads=q.fetchInputsAndOutputs,
        )
    )
    return pb.QueryInstancesResponse(
        orchestrationState=[
            convert.orchestration_state(s, include_payloads=q.fetchInputsAndOutputs) for s in page.instances
        ],
        continuationToken=convert.text(page.next_cursor),
    )


def list_instance_ids(hub: TaskHub, request: pb.ListInstanceIdsRequest) -> pb.ListInstanceIdsResponse:
    """Finished instances, filtered by completion time, paged with dtctl's own cursor."""
    statuses = _statuses(request.runtimeStatus) or tuple(sorted(TERMINAL_STATUSES))
    statuses = tuple(s for s in statuses if s in TERMINAL_STATUSES)
    size = min(request.pageSize if request.pageSize > 0 else 100, MAX_PAGE)
    low = convert.micros(request.completedTimeFrom) if request.HasField("completedTimeFrom") else None
    high = convert.micros(request.completedTimeTo) if request.HasField("completedTimeTo") else None
    cursor = convert.optional_text(request, "lastInstanceKey") or None
    ids: list[str] = []
    while statuses and len(ids) < size:
        # Every row a page returns is consumed, so the cursor after it is exact even when we stop early.
        page = hub.list_instances(InstanceQuery(statuses=statuses, limit=size - len(ids), cursor=cursor))
        cursor = page.next_cursor
        for state in page.instances:
            done = state.completed_at
            if done is not None and (low is None or done >= low) and (high is None or done < high):
                ids.append(state.instance_id)
        if cursor is None:
            break
    return pb.ListInstanceIdsResponse(instanceIds=ids, lastInstanceKey=convert.text(cursor))


def history_chunks(hub: TaskHub, request: pb.StreamInstanceHistoryRequest) -> Iterator[pb.HistoryChunk]:
    instance_id = require_id(request.instanceId)
    if hub.get_instance(instance_id, include_payloads=False) is None:
        raise RpcFailure("NOT_FOUND", f"orchestration instance {instance_id!r} not found")
    records = hub.get_history(instance_id, convert.optional_text(request, "executionId") or None)
    chunk: list[pb.HistoryEvent] = []
    size = 0
    for record in records:
        event = convert.event_to_proto(record.event)
        event_size = event.ByteSize()
        if chunk and size + event_size > HISTORY_CHUNK_BYTES:
            yield pb.HistoryChunk(events=chunk)
            chunk, size = [], 0
        chunk.append(event)
        size += event_size
    yield pb.HistoryChunk(events=chunk)


# --- change ------------------------------------------------------------------------------------------------


def raise_event(hub: TaskHub, request: pb.RaiseEventRequest) -> pb.RaiseEventResponse:
    if not request.name:
        raise RpcFailure("INVALID_ARGUMENT", "name (the event name) is required")
    hub.raise_event(require_id(request.instanceId), request.name, convert.optional_text(request, "input"))
    return pb.RaiseEventResponse()


def terminate(hub: TaskHub, request: pb.TerminateRequest) -> pb.TerminateResponse:
    reason = convert.reason_from_json(convert.optional_text(request, "output"))
    hub.terminate(require_id(request.instanceId), reason, recursive=request.recursive)
    return pb.TerminateResponse()


def suspend(hub: TaskHub, request: pb.SuspendRequest) -> pb.SuspendResponse:
    instance_id = require_id(request.instanceId)
    state = hub.get_instance(instance_id, include_payloads=False)
    if state is None or state.status != "SUSPENDED":  # suspending a suspended instance changes nothing
        hub.suspend(instance_id, convert.reason_from_json(convert.optional_text(request, "reason")))
    return pb.SuspendResponse()


def resume(hub: TaskHub, request: pb.ResumeRequest) -> pb.ResumeResponse:
    hub.resume(
        require_id(request.instanceId), convert.reason_from_json(convert.optional_text(request, "reason"))
    )
    return pb.ResumeResponse()


def restart(hub: TaskHub, request: pb.RestartInstanceRequest) -> pb.RestartInstanceResponse:
    """A finished instance started again (same name, input, version), under its id or a new one."""
    from dtctl import repair

    instance_id = require_id(request.instanceId)
    started = repair.restart(hub, instance_id, new_instance_id=request.restartWithNewInstanceId)
    return pb.RestartInstanceResponse(instanceId=started)


def rewind(hub: TaskHub, request: pb.RewindInstanceRequest) -> pb.RewindInstanceResponse:
    """The hub rewrites the failed history itself (dtctl.core.rewind); the SDK then replays it normally."""
    hub.rewind(require_id(request.instanceId), convert.optional_text(request, "reason"))
    return pb.RewindInstanceResponse()


def purge(hub: TaskHub, request: pb.PurgeInstancesRequest) -> pb.PurgeInstancesResponse:
    kind = request.WhichOneof("request")
    if kind == "instanceId":
        ids = [require_id(request.instanceId)]
    elif kind == "instanceBatch":
        ids = [require_id(i) for i in request.instanceBatch.instanceIds]
    elif kind == "purgeInstanceFilter":
        ids = _ids_matching(hub, request.purgeInstanceFilter)
    else:
        raise RpcFailure("INVALID_ARGUMENT", "give an instanceId, an instanceBatch or a purgeInstanceFilter")
    if request.recursive:
        ids = _with_descendants(hub, ids)
    deleted = hub.purge(PurgeQuery(instance_ids=tuple(ids))) if ids else 0
    return pb.PurgeInstancesResponse(
        deletedInstanceCount=deleted, isComplete=wrappers_pb2.BoolValue(value=True)
    )


def _ids_matching(hub: TaskHub, spec: pb.PurgeInstanceFilter) -> list[str]:
    statuses = tuple(
        s for s in (_statuses(spec.runtimeStatus) or TERMINAL_STATUSES) if s in TERMINAL_STATUSES
    )
    query = InstanceQuery(
        statuses=tuple(sorted(statuses)),
        created_after=convert.micros(spec.createdTimeFrom) if spec.HasField("createdTimeFrom") else None,
        created_before=convert.micros(spec.createdTimeTo) if spec.HasField("createdTimeTo") else None,
        limit=MAX_PAGE,
    )
    ids: list[str] = []
    while True:
        page = hub.list_instances(query)
        ids.extend(s.instance_id for s in page.instances)
        if page.next_cursor is None:
            return ids
        query = InstanceQuery(
            statuses=query.statuses,
            created_after=query.created_after,
            created_before=query.created_before,
            limit=MAX_PAGE,
            cursor=page.next_cursor,
        )


def _with_descendants(hub: TaskHub, roots: list[str]) -> list[str]:
    """The roots and every sub-orchestration they started, found in their stored histories."""
    found: list[str] = []
    seen: set[str] = set()
    stack = list(reversed(roots))
    while stack:
        instance_id = stack.pop()
        if instance_id in seen:
            continue
        seen.add(instance_id)
        found.append(instance_id)
        state = hub.get_instance(instance_id, include_payloads=False)
        if state is None:
            continue
        executions = [state.execution_id, state.previous_execution_id]
        for execution in (e for e in executions if e is not None):
            for record in hub.get_history(instance_id, execution):
                if isinstance(record.event, SubOrchestrationCreated):
                    stack.append(record.event.instance_id)
    return found
