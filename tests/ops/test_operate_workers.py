"""scale-recommend, workers, top, doctor and hub backup against real worker processes.

Every wait polls with a deadline (tests/helpers.py ``wait_until``); nothing sleeps to synchronise.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from dtctl.client import StartRequest, TaskHubClient
from dtctl.core.history import COMPLETED
from dtctl.hub import open_hub
from dtctl.hub.sqlite import SqliteTaskHub
from dtctl.scale import recommend
from tests.helpers import WorkerProcess, all_terminal, dtctl, json_out, wait_until

GATED = "tests/apps/gated.py:app"
HELLO = "samples/hello_cities.py:app"


@pytest.fixture
def hub_path(tmp_path: Path) -> Path:
    path = tmp_path / "hub.db"
    open_hub(str(path), create=True).close()
    return path


def recommended(hub_path: Path) -> dict[str, Any]:
    result: dict[str, Any] = json_out(
        dtctl("scale-recommend", "--max-orchestrations", "8", "--max-activities", "8", "--json", hub=hub_path)
    )
    return result


def test_scale_recommendation_falls_from_five_to_zero_as_workers_drain(
    hub_path: Path, tmp_path: Path
) -> None:
    with TaskHubClient(str(hub_path)) as client:
        client.start_instances([StartRequest("hello_cities", None, f"h{n}") for n in range(40)])
    first = recommended(hub_path)
    assert first["recommended_workers"] == 5
    assert (first["live_orchestrations"], first["live_activities"]) == (40, 0)
    assert (first["max_orchestrations"], first["max_activities"]) == (8, 8)
    plain = dtctl("scale-recommend", "--max-orchestrations", "8", "--max-activities", "8", hub=hub_path)
    assert plain.returncode == 0 and plain.stdout == "5\n" and "ceil(40" in plain.stderr

    seen: list[int] = []
    hub = SqliteTaskHub(hub_path)
    workers = [WorkerProcess(hub_path, HELLO, tmp_path / "logs", max_orchestrations=8) for _ in range(2)]
    try:

        def drained() -> bool:
            value = recommend(hub.scale_metrics(), 8, 8).recommended_workers
            if not seen or seen[-1] != value:
                seen.append(value)
            return value == 0 and all_terminal(hub_path, 40)

        wait_until(drained, timeout=60, interval=0.005, what="the backlog to drain")
    finally:
        hub.close()
        for w in workers:
            w.stop()
    assert seen[0] == 5 and seen[-1] == 0
    last = recommended(hub_path)
    assert (last["recommended_workers"], last["live_orchestrations"], last["live_activities"]) == (0, 0, 0)


def findings(result: Any) -> dict[str, dict[str, Any]]:
    return {f["check"]: f for f in json.loads(result.stdout)["findings"]}


def test_workers_top_and_doctor_see_a_killed_worker(hub_path: Path, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    client = TaskHubClient(str(hub_path))
    client.start_instance("gated_workflow", input=str(gate), instance_id="held")
    settings: dict[str, Any] = {"heartbeat_seconds": 0.2, "lease_seconds": 2.0}
    doomed = WorkerProcess(
        hub_path, GATED, tmp_path / "logs", max_orchestrations=3, max_activities=4, **settings
    )
    rescuer: WorkerProcess | None = None
    try:
        wait_until(
            lambda: any(
                f":{doomed.pid}:" in (t.lease_owner or "") for t in client.hub.pending_activities("held")
            ),
            what="the worker to lease the gated activity",
        )
        [row] = json_out(dtctl("workers", "--json", hub=hub_path))["workers"]
        assert (row["pid"], row["state"]) == (doomed.pid, "live")
        assert (row["activities"]["leased"], row["activities"]["max"]) == (1, 4)
        assert row["orchestrations"] == {"leased": 0, "max": 3}
        assert "gated_workflow" in row["registered"]["orchestrations"]
        assert "wait_for_gate" in row["registered"]["activities"]
        worker_id = row["worker_id"]

        top = json_out(dtctl("top", "--once", "--json", hub=hub_path))
        assert top["workers"]["live"] == 1 and top["workers"]["lost"] == 0
        assert top["workers"]["slots"]["activities"] == {"leased": 1, "limit": 4}
        assert top["queues"]["activity_queue"]["leased"] == 1
        assert top["latency"]["orchestration_episodes"]["samples"] >= 1
        assert top["scale"]["live_activities"] == 1 and top["unclaimable_backlog"] == []

        healthy = dtctl("doctor", "--json", hub=hub_path)
        assert healthy.returncode == 0, healthy.stdout
        assert not [f for f in findings(healthy).values() if f["severity"] == "problem"]

        client.start_instance("nobody_runs_this", instance_id="orphan")
        top = json_out(dtctl("top", "--once", "--json", hub=hub_path))
        assert [(b["kind"], b["name"]) for b in top["unclaimable_backlog"]] == [
            ("orchestration", "nobody_runs_this")
        ]
        client.terminate("orphan")

        doomed.kill()  # SIGKILL: no drain, the heartbeat row and the activity lease stay behind
        wait_until(
            lambda: client.hub.now() - client.hub.list_workers()[0].heartbeat_at > 1_200_000,
            what="the killed worker's heartbeat to age",
        )
        [row] = json_out(dtctl("workers", "--lost-after", "1", "--json", hub=hub_path))["workers"]
        assert (row["worker_id"], row["state"]) == (worker_id, "lost")
        inspector = client.hub
        assert isinstance(inspector, SqliteTaskHub)
        wait_until(lambda: inspector.stuck_work().expired_lease_count, what="the lease to expire")

        stuck = dtctl("doctor", "--lost-after", "1", "--json", hub=hub_path)
        assert stuck.returncode == 4, stuck.stdout
        found = findings(stuck)
        assert found["expired-leases"]["severity"] == "problem"
        assert worker_id in found["expired-leases"]["message"]
        assert found["workers"]["severity"] == "warning" and worker_id in found["workers"]["message"]
        assert found["unclaimable-backlog"]["severity"] == "problem"  # no live worker at all now
        assert json.loads(stuck.stdout)["exit_code"] == 4
        top = json_out(dtctl("top", "--once", "--json", "--lost-after", "1", hub=hub_path))
        assert (top["workers"]["live"], top["workers"]["lost"]) == (0, 1)

        rescuer = WorkerProcess(hub_path, GATED, tmp_path / "logs", **settings)
        gate.touch()
        assert client.wait_for_completion("held", timeout=30).status == COMPLETED
        after = dtctl("doctor", "--lost-after", "1", "--json", hub=hub_path)
        assert after.returncode == 0, after.stdout  # the lost worker is only a warning now
        forgot = json_out(dtctl("workers", "--lost-after", "1", "--forget-lost", "--json", hub=hub_path))
        assert forgot["forgotten"] == [worker_id]
        assert [w["state"] for w in forgot["workers"]] == ["live"]
    finally:
        client.close()
        doomed.stop()
        if rescuer is not None:
            rescuer.stop()


def test_backup_and_top_while_a_fan_out_runs(hub_path: Path, tmp_path: Path) -> None:
    with TaskHubClient(str(hub_path)) as client:
        client.start_instance("fan", input=400, instance_id="fan")
    worker = WorkerProcess(hub_path, GATED, tmp_path / "logs", heartbeat_seconds=0.2)
    backup = tmp_path / "copy.db"
    try:
        with TaskHubClient(str(hub_path)) as client:
            wait_until(lambda: client.hub.pending_activities("fan"), what="the fan-out to start")
        made = dtctl("hub", "backup", str(backup), "--json", hub=hub_path)
        snapshot = dtctl("top", "--once", hub=hub_path)
    finally:
        with TaskHubClient(str(hub_path)) as client:
            final = client.wait_for_completion("fan", timeout=60)
        worker.stop()
    assert final.status == COMPLETED
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["backup"] == str(backup)
    with sqlite3.connect(backup) as db:
        assert db.execute("PRAGMA quick_check").fetchone()[0] == "ok"
    assert json_out(dtctl("list", "--json", hub=backup))["instances"][0]["instance_id"] == "fan"
    again = dtctl("hub", "backup", str(backup), hub=hub_path)
    assert again.returncode == 2 and "exists" in again.stderr
    assert snapshot.returncode == 0, snapshot.stderr
    for heading in ("orchestration inbox", "activity queue", "throughput", "LATENCY", "workers:", "scale"):
        assert heading in snapshot.stdout
