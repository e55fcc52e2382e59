"""Leases under real processes: a stopped worker is overtaken, a drained one gives its leases back."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from dtctl.client import TaskHubClient
from dtctl.core.history import COMPLETED, TERMINATED
from dtctl.hub import open_hub
from tests.helpers import WorkerProcess, check_invariants, wait_until

APP = "tests/apps/gated.py:app"


@pytest.fixture
def hub_path(tmp_path: Path) -> Path:
    path = tmp_path / "hub.db"
    open_hub(str(path), create=True).close()
    return path


def _activity_lease_owner(hub_path: Path, instance_id: str) -> str | None:
    hub = open_hub(str(hub_path))
    try:
        items = hub.pending_activities(instance_id)
        return next((i.lease_owner for i in items if i.lease_owner), None)
    finally:
        hub.close()


def _completions(hub_path: Path, instance_id: str) -> list[int]:
    hub = open_hub(str(hub_path))
    try:
        return [r.event.task_id for r in hub.get_history(instance_id) if r.event.kind == "task_completed"]
    finally:
        hub.close()


def test_stopped_worker_is_overtaken_and_its_late_result_refused(hub_path: Path, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    with TaskHubClient(str(hub_path)) as client:
        client.start_instance("gated_workflow", input=str(gate), instance_id="held")
    stopped = WorkerProcess(hub_path, APP, tmp_path / "logs", lease_seconds=1.0)
    wait_until(
        lambda: f":{stopped.pid}:" in (_activity_lease_owner(hub_path, "held") or ""),
        what="the first worker to lease the gated activity",
    )
    stopped.signal(signal.SIGSTOP)
    gate.touch()
    rescuer = WorkerProcess(hub_path, APP, tmp_path / "logs", lease_seconds=1.0)
    try:
        with TaskHubClient(str(hub_path)) as client:
            final = client.wait_for_completion("held", timeout=60)
        assert final.status == COMPLETED
        stopped.signal(signal.SIGCONT)
        wait_until(
            lambda: "lease was lost" in stopped.log() or "refused" in stopped.log(),
            what="the stopped worker's late result to be refused",
        )
    finally:
        stopped.stop()
        rescuer.stop()
    assert sorted(_completions(hub_path, "held")) == [0, 1]
    check_invariants(hub_path)


def test_drained_worker_releases_its_leases_at_once(hub_path: Path, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    with TaskHubClient(str(hub_path)) as client:
        client.start_instance("gated_workflow", input=str(gate), instance_id="drain")
    # A long lease: if the drain did not release it, the next worker would wait a whole minute.
    first = WorkerProcess(hub_path, APP, tmp_path / "logs", lease_seconds=60.0, drain_seconds=0.2)
    wait_until(
        lambda: f":{first.pid}:" in (_activity_lease_owner(hub_path, "drain") or ""),
        what="the worker to lease the gated activity",
    )
    first.signal(signal.SIGTERM)
    assert first.wait(timeout=20) == 0
    assert _activity_lease_owner(hub_path, "drain") is None
    gate.touch()
    second = WorkerProcess(hub_path, APP, tmp_path / "logs", lease_seconds=60.0)
    try:
        with TaskHubClient(str(hub_path)) as client:
            assert client.wait_for_completion("drain", timeout=20).status == COMPLETED
    finally:
        second.stop()
    check_invariants(hub_path)


def test_result_for_terminated_instance_is_discarded(hub_path: Path, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    with TaskHubClient(str(hub_path)) as client:
        client.start_instance("gated_workflow", input=str(gate), instance_id="doomed")
        worker = WorkerProcess(hub_path, APP, tmp_path / "logs", lease_seconds=5.0)
        try:
            wait_until(lambda: _activity_lease_owner(hub_path, "doomed"), what="the activity to be leased")
            client.terminate("doomed", "test")
            assert client.wait_for_completion("doomed", timeout=20).status == TERMINATED
            gate.touch()
            wait_until(lambda: not _pending(hub_path, "doomed"), what="the late result to be discarded")
        finally:
            worker.stop()
    assert _completions(hub_path, "doomed") == []
    check_invariants(hub_path)


def _pending(hub_path: Path, instance_id: str) -> bool:
    hub = open_hub(str(hub_path))
    try:
        return bool(hub.pending_activities(instance_id))
    finally:
        hub.close()
