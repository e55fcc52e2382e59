"""Versions and tags through the unmodified durabletask SDK over serve, on both hubs."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import grpc
import pytest
from durabletask import client
from durabletask.internal import orchestrator_service_pb2 as sdk_pb
from durabletask.internal import orchestrator_service_pb2_grpc as sdk_grpc

from dtctl.hub import open_hub
from dtctl.hub.base import InboxMessage, InstanceState
from dtctl.serve import health
from tests.helpers import wait_until
from tests.serve.conftest import make_hub
from tests.serve.harness import SdkWorker, Serve

OrchestrationStatus = client.OrchestrationStatus


@pytest.fixture
def c(served: Serve) -> client.TaskHubGrpcClient:
    return client.TaskHubGrpcClient(host_address=served.address)


def _state(hub_path: str, instance_id: str) -> InstanceState:
    hub = open_hub(hub_path)
    try:
        found = hub.get_instance(instance_id, include_payloads=False)
    finally:
        hub.close()
    assert found is not None
    return found


def test_version_and_tags_are_stored_and_reach_the_orchestration(
    c: client.TaskHubGrpcClient, served: Serve
) -> None:
    tags = {"team": "billing", "ticket": "42"}
    instance_id = c.schedule_new_orchestration("version_echo", version="1.2.0", tags=tags)
    state = c.wait_for_orchestration_completion(instance_id, timeout=60)
    assert state is not None and state.runtime_status == OrchestrationStatus.COMPLETED
    assert json.loads(state.serialized_output or "") == "1.2.0"  # ctx.version, from ExecutionStarted
    stored = _state(served.hub, instance_id)
    assert (stored.version, stored.tags) == ("1.2.0", tags)
    with grpc.insecure_channel(served.address) as channel:
        answer = sdk_grpc.TaskHubSidecarServiceStub(channel).GetInstance(
            sdk_pb.GetInstanceRequest(instanceId=instance_id), timeout=10
        )
    assert answer.orchestrationState.version.value == "1.2.0"
    assert dict(answer.orchestrationState.tags) == tags


def test_continue_as_new_keeps_the_version(c: client.TaskHubGrpcClient, served: Serve) -> None:
    instance_id = c.schedule_new_orchestration("counter", input=0, version="3.0")
    state = c.wait_for_orchestration_completion(instance_id, timeout=60)
    assert state is not None and json.loads(state.serialized_output or "") == 5
    assert _state(served.hub, instance_id).version == "3.0"


def test_a_strict_worker_leases_only_its_version(tmp_path: Path) -> None:
    # One backend is enough: the version filter is the hub's lease filter, tested on both in tests/hub.
    hub = make_hub("sqlite", tmp_path)
    serve = Serve(hub, tmp_path / "logs")
    strict = SdkWorker(serve.port, tmp_path / "logs", USE_FILTERS=1, STRICT_VERSION="2.0")
    c = client.TaskHubGrpcClient(host_address=serve.address)
    try:
        wait_until(lambda: _stream_versions(hub) == ["2.0"], timeout=60, what="the strict worker's stream")
        older = c.schedule_new_orchestration("version_echo", version="1.0", instance_id=f"v1-{uuid.uuid4()}")
        unversioned = c.schedule_new_orchestration("version_echo", instance_id=f"v0-{uuid.uuid4()}")
        matching = c.schedule_new_orchestration("version_echo", version="2.0")
        done = c.wait_for_orchestration_completion(matching, timeout=60)
        assert done is not None and json.loads(done.serialized_output or "") == "2.0"
        # Leases take the oldest visible work first: had the filter let the older instances through,
        # they would have been leased (their messages dequeued) no later than the matching one.
        for waiting in (older, unversioned):
            assert _state(hub, waiting).status == "PENDING"
            assert [m.dequeue_count for m in _pending(hub, waiting)] == [0]
        # Visible work that the only stream may not take must not make serve spin: over a two-second
        # window it asks the hub for work about once per idle poll (a spinning engine asks every 5 ms).
        before = _lease_rounds(serve)
        time.sleep(2.0)  # a measurement window, not a synchronisation
        assert _lease_rounds(serve) - before < 20
    finally:
        strict.stop()
        serve.stop()


def _lease_rounds(serve: Serve) -> int:
    found = health.read_status(serve.address, token=None, tls_root=None, timeout=10)
    return int(found["counters"]["lease_rounds"])


def _pending(hub_path: str, instance_id: str) -> list[InboxMessage]:
    hub = open_hub(hub_path)
    try:
        return hub.pending_messages(instance_id)
    finally:
        hub.close()


def _stream_versions(hub_path: str) -> list[str]:
    hub = open_hub(hub_path)
    try:
        return [str(w.extra.get("versions")) for w in hub.list_workers() if "versions" in w.extra]
    finally:
        hub.close()
