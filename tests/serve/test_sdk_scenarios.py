"""The unmodified durabletask SDK (PyPI) as client and worker, over ``dtctl serve``, on SQLite and PostgreSQL.

Client in this process, SDK worker and serve in their own processes (see conftest.py).
"""

from __future__ import annotations

import json
import subprocess
import uuid

import grpc
import pytest
from durabletask import client
from durabletask.internal import orchestrator_service_pb2 as sdk_pb
from durabletask.internal import orchestrator_service_pb2_grpc as sdk_grpc

from tests.helpers import wait_until
from tests.serve.harness import DTCTL, Serve

OrchestrationStatus = client.OrchestrationStatus


@pytest.fixture
def c(served: Serve) -> client.TaskHubGrpcClient:
    return client.TaskHubGrpcClient(host_address=served.address)


def run(
    c: client.TaskHubGrpcClient, name: str, data: object = None, timeout: float = 60
) -> client.OrchestrationState:
    instance_id = c.schedule_new_orchestration(name, input=data)
    state = c.wait_for_orchestration_completion(instance_id, timeout=timeout)
    assert state is not None
    return state


def test_chaining(c: client.TaskHubGrpcClient) -> None:
    state = run(c, "chain")
    assert state.runtime_status == OrchestrationStatus.COMPLETED
    assert json.loads(state.serialized_output or "") == ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]


def test_fan_out(c: client.TaskHubGrpcClient) -> None:
    state = run(c, "fan_out", 200)
    assert state.runtime_status == OrchestrationStatus.COMPLETED
    assert json.loads(state.serialized_output or "") == 200


def test_event_arrives_before_the_timeout(c: client.TaskHubGrpcClient) -> None:
    instance_id = c.schedule_new_orchestration("approval", input=30)
    c.wait_for_orchestration_start(instance_id, timeout=30)
    c.raise_orchestration_event(instance_id, "approve", data="alice")
    state = c.wait_for_orchestration_completion(instance_id, timeout=30)
    assert state is not None and json.loads(state.serialized_output or "") == "approved:alice"


def test_event_timeout_fires(c: client.TaskHubGrpcClient) -> None:
    state = run(c, "approval", 0.5)
    assert json.loads(state.serialized_output or "") == "timed out"


def test_durable_timer(c: client.TaskHubGrpcClient) -> None:
    state = run(c, "sleeper", 1.0)
    assert state.runtime_status == OrchestrationStatus.COMPLETED
    assert (state.last_updated_at - state.created_at).total_seconds() >= 1.0


def test_sub_orchestrations_and_failures(c: client.TaskHubGrpcClient) -> None:
    state = run(c, "parent", 3)
    assert json.loads(state.serialized_output or "") == "Hello leaf!"
    failed = run(c, "failing")
    assert failed.runtime_status == OrchestrationStatus.FAILED
    assert failed.failure_details is not None and "boom" in failed.failure_details.message


def test_continue_as_new(c: client.TaskHubGrpcClient) -> None:
    state = run(c, "counter", 0)
    assert json.loads(state.serialized_output or "") == 5


def test_suspend_resume_terminate(c: client.TaskHubGrpcClient) -> None:
    instance_id = c.schedule_new_orchestration("waiter")
    c.wait_for_orchestration_start(instance_id, timeout=30)
    c.suspend_orchestration(instance_id)
    wait_until(
        lambda: c.get_orchestration_state(instance_id).runtime_status == OrchestrationStatus.SUSPENDED,
        what="SUSPENDED",
    )
    c.raise_orchestration_event(instance_id, "go", data=1)  # held while suspended
    c.resume_orchestration(instance_id)
    state = c.wait_for_orchestration_completion(instance_id, timeout=30)
    assert state is not None and json.loads(state.serialized_output or "") == 1

    other = c.schedule_new_orchestration("waiter")
    c.wait_for_orchestration_start(other, timeout=30)
    c.terminate_orchestration(other, output="enough")
    ended = c.wait_for_orchestration_completion(other, timeout=30)
    assert ended is not None and ended.runtime_status == OrchestrationStatus.TERMINATED
    assert json.loads(ended.serialized_output or "") == "enough"


def test_recursive_terminate_and_purge(c: client.TaskHubGrpcClient, served: Serve) -> None:
    root = c.schedule_new_orchestration("parent", input=2, instance_id=f"root-{uuid.uuid4().hex[:8]}")
    state = c.wait_for_orchestration_completion(root, timeout=60)
    assert state is not None and state.runtime_status == OrchestrationStatus.COMPLETED
    children = [f"{root}:0001", f"{root}:0001:0001"]  # the SDK names children {parent}:{task id:04x}
    for child in children:
        assert c.get_orchestration_state(child) is not None
    result = c.purge_orchestration(root, recursive=True)
    assert result.deleted_instance_count == 3
    assert all(c.get_orchestration_state(i) is None for i in [root, *children])

    waiting = c.schedule_new_orchestration("waiter")
    c.wait_for_orchestration_start(waiting, timeout=30)
    c.terminate_orchestration(waiting, recursive=True)
    assert (
        c.wait_for_orchestration_completion(waiting, timeout=30).runtime_status
        == OrchestrationStatus.TERMINATED
    )


def test_history_and_queries(c: client.TaskHubGrpcClient) -> None:
    state = run(c, "chain")
    history = c.get_orchestration_history(state.instance_id)
    kinds = [type(e).__name__ for e in history]
    assert kinds.count("TaskScheduledEvent") == 3 and kinds.count("TaskCompletedEvent") == 3
    assert kinds[-1] == "ExecutionCompletedEvent"
    ids = c.list_instance_ids(runtime_status=[OrchestrationStatus.COMPLETED], page_size=1000)
    assert state.instance_id in ids.items
    everything = c.get_all_orchestration_states()
    assert any(s.instance_id == state.instance_id for s in everything)


def test_dtctl_sees_sdk_work(c: client.TaskHubGrpcClient, served: Serve) -> None:
    state = run(c, "chain")
    shown = subprocess.run(
        [*DTCTL, "--hub", served.hub, "--json", "status", state.instance_id], capture_output=True, text=True
    )
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["status"] == "COMPLETED"
    workers = subprocess.run(
        [*DTCTL, "--hub", served.hub, "--json", "workers"], capture_output=True, text=True
    )
    rows = json.loads(workers.stdout)["workers"]
    sdk = [w for w in rows if "chain" in w["registered"]["orchestrations"]]
    assert len(sdk) == 1, workers.stdout
    assert "hello" in sdk[0]["registered"]["activities"]


def test_bad_requests_and_unimplemented(served: Serve) -> None:
    with grpc.insecure_channel(served.address) as channel:
        stub = sdk_grpc.TaskHubSidecarServiceStub(channel)
        with pytest.raises(grpc.RpcError) as missing:
            stub.RaiseEvent(sdk_pb.RaiseEventRequest(instanceId="no-such-instance", name="x"), timeout=10)
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.RpcError) as nameless:
            stub.StartInstance(sdk_pb.CreateInstanceRequest(instanceId="x"), timeout=10)
        assert nameless.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert stub.GetInstance(sdk_pb.GetInstanceRequest(instanceId="x"), timeout=10).exists is False
        for missing_call, missing_request in [
            (stub.RewindInstance, sdk_pb.RewindInstanceRequest(instanceId="x")),
            (stub.RestartInstance, sdk_pb.RestartInstanceRequest(instanceId="x")),
        ]:
            with pytest.raises(grpc.RpcError) as absent:
                missing_call(missing_request, timeout=10)
            assert absent.value.code() == grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.RpcError) as refused:
            stub.DeleteTaskHub(sdk_pb.DeleteTaskHubRequest(), timeout=10)
        assert refused.value.code() == grpc.StatusCode.UNIMPLEMENTED
        assert "does not implement" in (refused.value.details() or "")
        for stale_call, stale_request in [
            (stub.CompleteActivityTask, sdk_pb.ActivityResponse(instanceId="x", completionToken="stale")),
            (stub.CompleteEntityTask, sdk_pb.EntityBatchResult(completionToken="stale")),
        ]:
            with pytest.raises(grpc.RpcError) as stale:
                stale_call(stale_request, timeout=10)
            assert stale.value.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_duplicate_start_is_refused(c: client.TaskHubGrpcClient) -> None:
    instance_id = f"dup-{uuid.uuid4().hex[:8]}"
    c.schedule_new_orchestration("waiter", instance_id=instance_id)
    with pytest.raises(grpc.RpcError) as duplicate:
        c.schedule_new_orchestration("waiter", instance_id=instance_id)
    assert duplicate.value.code() == grpc.StatusCode.ALREADY_EXISTS
    c.terminate_orchestration(instance_id)
