"""Restart and rewind through the unmodified durabletask SDK client and worker, on both hubs."""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import pytest
from durabletask import client

from dtctl.core.history import TaskCompleted, TaskScheduled
from dtctl.hub import open_hub
from tests.serve.harness import Serve

OrchestrationStatus = client.OrchestrationStatus


@pytest.fixture
def c(served: Serve) -> client.TaskHubGrpcClient:
    return client.TaskHubGrpcClient(host_address=served.address)


def _finished(c: client.TaskHubGrpcClient, instance_id: str) -> client.OrchestrationState:
    state = c.wait_for_orchestration_completion(instance_id, timeout=60)
    assert state is not None
    return state


def _task_names(served: Serve, instance_id: str) -> tuple[list[str], int]:
    """(names scheduled, results recorded) in the instance's current execution."""
    hub = open_hub(served.hub)
    try:
        events = [r.event for r in hub.get_history(instance_id)]
    finally:
        hub.close()
    names = [e.name for e in events if isinstance(e, TaskScheduled)]
    return names, sum(isinstance(e, TaskCompleted) for e in events)


def test_restart_under_the_same_id_and_a_new_one(c: client.TaskHubGrpcClient) -> None:
    first = c.schedule_new_orchestration("chain")
    done = _finished(c, first)
    assert c.restart_orchestration(first) == first
    again = _finished(c, first)
    assert again.runtime_status == OrchestrationStatus.COMPLETED
    assert again.serialized_output == done.serialized_output
    fresh = c.restart_orchestration(first, restart_with_new_instance_id=True)
    assert fresh != first
    assert _finished(c, fresh).serialized_output == done.serialized_output


def test_restart_of_a_running_instance_is_refused(c: client.TaskHubGrpcClient) -> None:
    waiting = c.schedule_new_orchestration("waiter")
    c.wait_for_orchestration_start(waiting, timeout=30)
    with pytest.raises(grpc.RpcError) as refused:
        c.restart_orchestration(waiting)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    c.raise_orchestration_event(waiting, "go", data=1)
    assert _finished(c, waiting).runtime_status == OrchestrationStatus.COMPLETED


def test_rewind_reruns_only_the_failed_activity(
    c: client.TaskHubGrpcClient, served: Serve, tmp_path: Path
) -> None:
    gate = tmp_path / "fix"
    instance_id = c.schedule_new_orchestration("rewindable", input=str(gate))
    failed = _finished(c, instance_id)
    assert failed.runtime_status == OrchestrationStatus.FAILED
    gate.touch()
    c.rewind_orchestration(instance_id, reason="the fix is deployed")
    state = _finished(c, instance_id)
    assert state.runtime_status == OrchestrationStatus.COMPLETED
    assert json.loads(state.serialized_output or "") == ["Hello before!", "fixed"]
    # The rewound execution kept hello's result (it never ran again) and scheduled flaky once more.
    assert _task_names(served, instance_id) == (["hello", "flaky"], 2)


def test_rewind_of_a_parent_rewinds_its_failed_child(c: client.TaskHubGrpcClient, tmp_path: Path) -> None:
    gate = tmp_path / "fix"
    instance_id = c.schedule_new_orchestration("rewindable_parent", input=str(gate))
    assert _finished(c, instance_id).runtime_status == OrchestrationStatus.FAILED
    gate.touch()
    c.rewind_orchestration(instance_id)
    state = _finished(c, instance_id)
    assert state.runtime_status == OrchestrationStatus.COMPLETED
    assert json.loads(state.serialized_output or "") == ["Hello before!", "fixed"]


def test_rewind_of_an_instance_that_did_not_fail_is_refused(c: client.TaskHubGrpcClient) -> None:
    done = c.schedule_new_orchestration("chain")
    _finished(c, done)
    with pytest.raises(grpc.RpcError) as refused:
        c.rewind_orchestration(done)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
