"""The ``TaskHubSidecarService`` servicer: every RPC of the sidecar protocol, mapped onto dtctl.

Work RPCs (GetWorkItems, Complete*, Abandon*) go through the :class:`~dtctl.serve.engine.Engine`; client
RPCs run on a second hub connection of their own, one at a time. Errors leave as gRPC status codes with
a one-line message; an RPC this server does not implement yet answers UNIMPLEMENTED (see
:mod:`dtctl.serve.hooks`), never hangs.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import grpc
from google.protobuf import empty_pb2

from dtctl.core.history import TERMINAL_STATUSES, TaskCompleted, TaskFailed
from dtctl.errors import (
    DtctlError,
    HubBusy,
    InstanceAlreadyExists,
    InstanceNotFound,
    InvalidState,
    UsageError,
)
from dtctl.hub.base import ActivityResult, InstanceState, TaskHub
from dtctl.serve import clientops, convert, entityops, entitywork, hooks
from dtctl.serve.engine import Engine, Refused
from dtctl.serve.episode import decide
from dtctl.serve.proto import orchestrator_service_pb2 as pb
from dtctl.serve.proto import orchestrator_service_pb2_grpc as pb_grpc
from dtctl.serve.streams import Names, Stream

log = logging.getLogger("dtctl.serve")

R = TypeVar("R")
PING_SECONDS = 15.0  # health pings on an idle stream; the SDK gives up on a silent one after 120 s
DEFAULT_CONCURRENCY = 100
# A safety net only: waiters are woken by commits (this process's and, through the hub's wake source,
# every other process's); a lost wake-up costs at most this long.
WAIT_RECHECK_SECONDS = 2.0

_STATUS_OF_ERROR: tuple[tuple[type[DtctlError], grpc.StatusCode], ...] = (
    (InstanceNotFound, grpc.StatusCode.NOT_FOUND),
    (InstanceAlreadyExists, grpc.StatusCode.ALREADY_EXISTS),
    (InvalidState, grpc.StatusCode.FAILED_PRECONDITION),
    (UsageError, grpc.StatusCode.INVALID_ARGUMENT),
    (HubBusy, grpc.StatusCode.UNAVAILABLE),
)


class Changes:
    """Wakes the RPCs waiting for an instance to change (WaitForInstanceStart/Completion)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._generation = 0

    def notify(self) -> None:
        with self._cond:
            self._generation += 1
            self._cond.notify_all()

    def generation(self) -> int:
        with self._cond:
            return self._generation

    def wait_after(self, generation: int, timeout: float) -> None:
        with self._cond:
            self._cond.wait_for(lambda: self._generation != generation, timeout)


class Sidecar(pb_grpc.TaskHubSidecarServiceServicer):
    def __init__(self, engine: Engine, client_hub: TaskHub, changes: Changes) -> None:
        self._engine = engine
        self._hub = client_hub
        self._hub_lock = threading.Lock()
        self._changes = changes

    # --- plumbing -----------------------------------------------------------------------------------

    def _client(
        self, context: grpc.ServicerContext, fn: Callable[[TaskHub], R], *, changes: bool = False
    ) -> R:
        try:
            with self._hub_lock:
                result = fn(self._hub)
        except clientops.RpcFailure as failure:
            context.abort(getattr(grpc.StatusCode, failure.code), failure.message)
        except DtctlError as error:
            context.abort(_status_of(error), error.message)
        if changes:
            self._engine.poke()  # new work may be visible now
        return result

    # --- session ------------------------------------------------------------------------------------

    def Hello(self, request: empty_pb2.Empty, context: grpc.ServicerContext) -> empty_pb2.Empty:
        return empty_pb2.Empty()

    # --- the work stream ----------------------------------------------------------------------------

    def GetWorkItems(
        self, request: pb.GetWorkItemsRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.WorkItem]:
        names = Names.from_request(request)
        conflict = self._name_conflict(names)
        if conflict:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, conflict)
        stream = Stream(
            names=names,
            max_orchestrations=request.maxConcurrentOrchestrationWorkItems or DEFAULT_CONCURRENCY,
            max_activities=request.maxConcurrentActivityWorkItems or DEFAULT_CONCURRENCY,
            max_entities=request.maxConcurrentEntityWorkItems or DEFAULT_CONCURRENCY,
            peer=context.peer(),
        )
        context.add_callback(lambda: self._engine.close_stream(stream))
        self._engine.open_stream(stream)
        log.info("serve: worker stream %s from %s", stream.owner, stream.peer)
        try:
            # The first message tells the SDK the stream is up (it counts a stream closed before its first
            # message as a failed connection).
            yield pb.WorkItem(healthPing=pb.HealthPing())
            while context.is_active():
                item = stream.next_item(PING_SECONDS)
                if item is None:
                    return
                yield item
        finally:
            self._engine.close_stream(stream)

    def _name_conflict(self, names: Names) -> str | None:
        """Mixed fleets: an orchestration name belongs to one kind of runtime (see the README)."""
        with self._hub_lock:
            workers = self._hub.list_workers()
            now = self._hub.now()
        native = [w for w in workers if "runtime" not in w.extra and now - w.heartbeat_at < 30_000_000]
        if not native:
            return None
        if names.orchestrations is None or names.activities is None:
            return (
                "this hub has live native dtctl workers; an SDK worker must declare its names with "
                "work item filters (worker.use_work_item_filters()) so the two never run each other's work"
            )
        native_entities = {str(n) for w in native for n in _listed(w.extra.get("entities"))}
        taken = sorted(
            {*names.orchestrations} & {n for w in native for n in w.orchestrations}
            | {*names.activities} & {n for w in native for n in w.activities}
            | {*(names.entities or ())} & native_entities
        )
        if taken:
            return f"names already run by native dtctl workers on this hub: {', '.join(taken)}"
        return None

    def CompleteOrchestratorTask(
        self, request: pb.OrchestratorResponse, context: grpc.ServicerContext
    ) -> pb.CompleteTaskResponse:
        try:
            episode = self._engine.episode(request.completionToken)
            if episode.item.instance_id != request.instanceId:
                context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT, "instanceId does not match the completion token"
                )
            self._engine.complete_orchestration(request.completionToken, decide(episode, request))
        except Refused as refused:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(refused))
        return pb.CompleteTaskResponse()

    def CompleteActivityTask(
        self, request: pb.ActivityResponse, context: grpc.ServicerContext
    ) -> pb.CompleteTaskResponse:
        try:
            item = self._engine.activity(request.completionToken)
            if item.instance_id != request.instanceId or item.task_id != request.taskId:
                context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT, "instanceId/taskId do not match the completion token"
                )
            now = time.time_ns() // 1000
            event: TaskCompleted | TaskFailed
            if request.HasField("failureDetails"):
                failure = convert.failure_from_proto(request.failureDetails)
                event = TaskFailed(timestamp=now, task_id=item.task_id, failure=failure)
            else:
                event = TaskCompleted(
                    timestamp=now, task_id=item.task_id, result=convert.optional_text(request, "result")
                )
            self._engine.complete_activity(request.completionToken, ActivityResult(item, event))
        except Refused as refused:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(refused))
        return pb.CompleteTaskResponse()

    def CompleteEntityTask(
        self, request: pb.EntityBatchResult, context: grpc.ServicerContext
    ) -> pb.CompleteTaskResponse:
        try:
            episode = self._engine.entity_episode(request.completionToken)
            self._engine.complete_entity(request.completionToken, entitywork.settle(episode, request))
        except entitywork.BadEntityResult as bad:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(bad))
        except Refused as refused:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(refused))
        return pb.CompleteTaskResponse()

    def AbandonTaskOrchestratorWorkItem(
        self, request: pb.AbandonOrchestrationTaskRequest, context: grpc.ServicerContext
    ) -> pb.AbandonOrchestrationTaskResponse:
        self._abandon(request.completionToken, context)
        return pb.AbandonOrchestrationTaskResponse()

    def AbandonTaskActivityWorkItem(
        self, request: pb.AbandonActivityTaskRequest, context: grpc.ServicerContext
    ) -> pb.AbandonActivityTaskResponse:
        self._abandon(request.completionToken, context)
        return pb.AbandonActivityTaskResponse()

    def AbandonTaskEntityWorkItem(
        self, request: pb.AbandonEntityTaskRequest, context: grpc.ServicerContext
    ) -> pb.AbandonEntityTaskResponse:
        self._abandon(request.completionToken, context)
        return pb.AbandonEntityTaskResponse()

    def _abandon(self, token: str, context: grpc.ServicerContext) -> None:
        if not token:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "completionToken is required")
        try:
            self._engine.abandon(token)
        except DtctlError as error:
            context.abort(_status_of(error), error.message)

    # --- client: start and read ---------------------------------------------------------------------

    def StartInstance(
        self, request: pb.CreateInstanceRequest, context: grpc.ServicerContext
    ) -> pb.CreateInstanceResponse:
        return self._client(context, lambda hub: clientops.start_instance(hub, request), changes=True)

    def GetInstance(
        self, request: pb.GetInstanceRequest, context: grpc.ServicerContext
    ) -> pb.GetInstanceResponse:
        return self._client(context, lambda hub: clientops.get_instance(hub, request))

    def WaitForInstanceStart(
        self, request: pb.GetInstanceRequest, context: grpc.ServicerContext
    ) -> pb.GetInstanceResponse:
        return self._wait(request, context, lambda s: s.status != "PENDING", "start")

    def WaitForInstanceCompletion(
        self, request: pb.GetInstanceRequest, context: grpc.ServicerContext
    ) -> pb.GetInstanceResponse:
        return self._wait(request, context, lambda s: s.status in TERMINAL_STATUSES, "complete")

    def _wait(
        self,
        request: pb.GetInstanceRequest,
        context: grpc.ServicerContext,
        reached: Callable[[InstanceState], bool],
        what: str,
    ) -> pb.GetInstanceResponse:
        instance_id = clientops.require_id(request.instanceId) if request.instanceId else ""
        if not instance_id:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "instanceId is required")
        include = request.getInputsAndOutputs
        while True:
            generation = self._changes.generation()
            state = self._client(context, lambda hub: hub.get_instance(instance_id, include_payloads=include))
            if state is None or reached(state):
                return clientops.instance_response(state, include)
            remaining = context.time_remaining()
            if remaining is not None and remaining <= 0:
                context.abort(
                    grpc.StatusCode.DEADLINE_EXCEEDED, f"timed out waiting for {instance_id!r} to {what}"
                )
            if not context.is_active():
                context.abort(grpc.StatusCode.CANCELLED, "the caller went away")
            timeout = WAIT_RECHECK_SECONDS if remaining is None else min(WAIT_RECHECK_SECONDS, remaining)
            self._changes.wait_after(generation, timeout)

    def QueryInstances(
        self, request: pb.QueryInstancesRequest, context: grpc.ServicerContext
    ) -> pb.QueryInstancesResponse:
        return self._client(context, lambda hub: clientops.query_instances(hub, request))

    def ListInstanceIds(
        self, request: pb.ListInstanceIdsRequest, context: grpc.ServicerContext
    ) -> pb.ListInstanceIdsResponse:
        return self._client(context, lambda hub: clientops.list_instance_ids(hub, request))

    def StreamInstanceHistory(
        self, request: pb.StreamInstanceHistoryRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.HistoryChunk]:
        chunks = self._client(context, lambda hub: list(clientops.history_chunks(hub, request)))
        yield from chunks

    # --- client: change -----------------------------------------------------------------------------

    def RaiseEvent(
        self, request: pb.RaiseEventRequest, context: grpc.ServicerContext
    ) -> pb.RaiseEventResponse:
        return self._client(context, lambda hub: clientops.raise_event(hub, request), changes=True)

    def TerminateInstance(
        self, request: pb.TerminateRequest, context: grpc.ServicerContext
    ) -> pb.TerminateResponse:
        return self._client(context, lambda hub: clientops.terminate(hub, request), changes=True)

    def SuspendInstance(
        self, request: pb.SuspendRequest, context: grpc.ServicerContext
    ) -> pb.SuspendResponse:
        return self._client(context, lambda hub: clientops.suspend(hub, request), changes=True)

    def ResumeInstance(self, request: pb.ResumeRequest, context: grpc.ServicerContext) -> pb.ResumeResponse:
        return self._client(context, lambda hub: clientops.resume(hub, request), changes=True)

    def PurgeInstances(
        self, request: pb.PurgeInstancesRequest, context: grpc.ServicerContext
    ) -> pb.PurgeInstancesResponse:
        return self._client(context, lambda hub: clientops.purge(hub, request))

    def RestartInstance(
        self, request: pb.RestartInstanceRequest, context: grpc.ServicerContext
    ) -> pb.RestartInstanceResponse:
        return self._client(context, lambda hub: clientops.restart(hub, request), changes=True)

    def RewindInstance(
        self, request: pb.RewindInstanceRequest, context: grpc.ServicerContext
    ) -> pb.RewindInstanceResponse:
        return self._client(context, lambda hub: clientops.rewind(hub, request), changes=True)

    # --- client: entities (run by the workers that registered them) --------------------------------

    def SignalEntity(
        self, request: pb.SignalEntityRequest, context: grpc.ServicerContext
    ) -> pb.SignalEntityResponse:
        return self._client(context, lambda hub: entityops.signal_entity(hub, request), changes=True)

    def GetEntity(self, request: pb.GetEntityRequest, context: grpc.ServicerContext) -> pb.GetEntityResponse:
        return self._client(context, lambda hub: entityops.get_entity(hub, request))

    def QueryEntities(
        self, request: pb.QueryEntitiesRequest, context: grpc.ServicerContext
    ) -> pb.QueryEntitiesResponse:
        return self._client(context, lambda hub: entityops.query_entities(hub, request))

    def CleanEntityStorage(
        self, request: pb.CleanEntityStorageRequest, context: grpc.ServicerContext
    ) -> pb.CleanEntityStorageResponse:
        return self._client(context, lambda hub: entityops.clean_entity_storage(hub, request), changes=True)

    def CreateTaskHub(
        self, request: pb.CreateTaskHubRequest, context: grpc.ServicerContext
    ) -> pb.CreateTaskHubResponse:
        if request.recreateIfExists:
            context.abort(
                grpc.StatusCode.UNIMPLEMENTED, "dtctl serve never deletes a hub; use dtctl's hub commands"
            )
        self._client(context, lambda hub: hub.create())
        return pb.CreateTaskHubResponse()

    # --- never: deleting a hub over the wire ---------------------------------------------------------

    DeleteTaskHub = hooks.delete_task_hub
    SkipGracefulOrchestrationTerminations = hooks.skip_graceful_terminations


def _listed(value: object) -> list[object]:
    return list(value) if isinstance(value, list | tuple) else []


def _status_of(error: DtctlError) -> grpc.StatusCode:
    for cls, code in _STATUS_OF_ERROR:
        if isinstance(error, cls):
            return code
    return grpc.StatusCode.INTERNAL
