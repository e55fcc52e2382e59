"""Planning and settling SDK entity batches (pure): what runs under a lock, and what a result may be."""

from __future__ import annotations

import pytest

pytest.importorskip("grpc", reason="needs the serve extra")

from google.protobuf import wrappers_pb2

from dtctl.core.entity_exec import (
    EntityMessage,
    LockGranted,
    LockHolder,
    MessageKind,
    OperationResponse,
    SendSignal,
)
from dtctl.hub.entity_records import EntityWorkItem
from dtctl.serve import entitywork
from dtctl.serve.proto import orchestrator_service_pb2 as pb
from dtctl.serve.streams import Names


def _item(messages: tuple[EntityMessage, ...], lock: LockHolder | None = None) -> EntityWorkItem:
    return EntityWorkItem(
        entity_id="@tally@k",
        name="tally",
        key="k",
        state="4",
        lock=lock,
        lease_token="t",
        lease_expires=2,
        leased_at=1,
        dequeue_count=1,
        messages=messages,
    )


def _ok(result: str | None) -> pb.OperationResult:
    value = None if result is None else wrappers_pb2.StringValue(value=result)
    return pb.OperationResult(success=pb.OperationResultSuccess(result=value))


HOLDER = LockHolder("orch", "e1", "cs")
CALL = EntityMessage(
    id=1,
    kind=MessageKind.CALL,
    operation="add",
    input="1",
    sender_instance_id="orch",
    sender_execution_id="e1",
    sender_task_id=7,
)
OTHER = EntityMessage(id=2, kind=MessageKind.SIGNAL, operation="add", input="5")
UNLOCK = EntityMessage(id=3, kind=MessageKind.UNLOCK, sender_instance_id="orch", critical_section_id="cs")


def test_under_a_lock_only_the_holders_operations_go_to_the_sdk_until_it_unlocks() -> None:
    planned = entitywork.plan(_item((OTHER, CALL, UNLOCK), lock=HOLDER))
    # The holder's call, the unlock, then the waiting signal, which the unlock let through.
    assert [m.id for m in planned.operations] == [1, 2]
    assert planned.plan.consumed == (1, 3, 2) and planned.plan.lock is None
    request = entitywork.request(planned)
    assert [o.requestId for o in request.operations] == ["1", "2"] and request.entityState.value == "4"
    result = pb.EntityBatchResult(
        results=[_ok("5"), _ok("10")],
        entityState=wrappers_pb2.StringValue(value="10"),
        actions=[pb.OperationAction(sendSignal=pb.SendSignalAction(instanceId="@Other@x", name="ping"))],
    )
    batch = entitywork.settle(planned, result)
    assert batch.result.state == "10" and batch.result.consumed == (1, 3, 2)
    assert batch.result.outgoing == (
        OperationResponse(instance_id="orch", execution_id="e1", task_id=7, result="5"),
        SendSignal(entity_id="@other@x", operation="ping"),
    )


def test_lock_traffic_alone_never_goes_to_the_sdk() -> None:
    lock = EntityMessage(
        id=4,
        kind=MessageKind.LOCK,
        sender_instance_id="o2",
        sender_execution_id="e",
        sender_task_id=3,
        critical_section_id="cs2",
        lock_set=("@tally@k",),
    )
    planned = entitywork.plan(_item((lock,)))
    assert not planned.needs_sdk
    batch = entitywork.own_batch(planned)
    assert batch.result.lock == LockHolder("o2", "e", "cs2")
    assert batch.result.outgoing == (
        LockGranted(instance_id="o2", execution_id="e", task_id=3, critical_section_id="cs2"),
    )


@pytest.mark.parametrize(
    "result",
    [
        pb.EntityBatchResult(results=[]),  # one result too few
        pb.EntityBatchResult(results=[_ok(None), _ok(None)]),  # one too many
        pb.EntityBatchResult(results=[pb.OperationResult()]),  # neither success nor failure
        pb.EntityBatchResult(failureDetails=pb.TaskFailureDetails(errorType="X", errorMessage="boom")),
        pb.EntityBatchResult(
            results=[_ok(None)],
            actions=[pb.OperationAction(sendSignal=pb.SendSignalAction(instanceId="no-at-sign", name="x"))],
        ),
    ],
)
def test_a_result_that_does_not_fit_is_refused(result: pb.EntityBatchResult) -> None:
    planned = entitywork.plan(_item((CALL,)))
    with pytest.raises(entitywork.BadEntityResult):
        entitywork.settle(planned, result)


def test_entity_filters_are_lower_cased_names() -> None:
    request = pb.GetWorkItemsRequest(
        workItemFilters=pb.WorkItemFilters(entities=[pb.EntityFilter(name="Counter")])
    )
    assert Names.from_request(request).entities == frozenset({"counter"})
    assert Names.from_request(pb.GetWorkItemsRequest()).entities is None
