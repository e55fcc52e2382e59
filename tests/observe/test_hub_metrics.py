"""``dtctl metrics serve`` exports the numbers ``dtctl top --once --json`` shows, once per hub."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from dtctl.client import TaskHubClient
from dtctl.hub import open_hub
from tests.helpers import dtctl, json_out, wait_until
from tests.observe.support import APP, Dtctl, free_ports, new_hub, samples, scrape, total


def _activity_leased(hub_path: Path, instance_id: str) -> bool:
    hub = open_hub(str(hub_path))
    try:
        return any(i.lease_owner for i in hub.pending_activities(instance_id))
    finally:
        hub.close()


def test_hub_gauges_equal_top(tmp_path: Path) -> None:
    hub = new_hub(tmp_path)
    gate = tmp_path / "gate"
    with TaskHubClient(str(hub)) as client:
        client.start_instance("gated", input=str(gate), instance_id="held")
    worker = Dtctl(hub, tmp_path / "worker.log", "worker", f"{APP}:app")
    port = free_ports(1)
    exporter = Dtctl(hub, tmp_path / "exporter.log", "metrics", "serve", "--port", str(port))
    try:
        wait_until(lambda: _activity_leased(hub, "held"), what="the gated activity to be leased")
        with TaskHubClient(str(hub)) as client:  # work nobody can take, and work for later
            for n in range(3):
                client.start_instance("nobody_runs_this", instance_id=f"orphan-{n}")
            client.start_instance("hello", start_at=datetime.now(UTC) + timedelta(hours=1))
        text = wait_until(lambda: scrape(port), what="the exporter's /metrics")
        top = json_out(dtctl("top", "--once", "--json", hub=hub))
    finally:
        gate.touch()
        exporter.stop()
        assert worker.stop() == 0, worker.log()
    found = samples(text)
    queues = top["queues"]
    for queue, shown in (
        ("orchestration", queues["orchestration_inbox"]),
        ("activity", queues["activity_queue"]),
    ):
        for state in ("waiting", "leased", "later"):
            assert total(found, "dtctl_hub_queue_depth", queue=queue, state=state) == shown[state], (
                queue,
                state,
            )
        oldest = shown["oldest_waiting"]
        age = total(found, "dtctl_hub_oldest_waiting_seconds", queue=queue)
        assert (oldest is None and age == 0) or abs(age - oldest["age_seconds"]) < 5
    for status in ("pending", "running", "suspended"):
        assert total(found, "dtctl_hub_instances", status=status.upper()) == top["instances"][status]
    workers = top["workers"]
    assert total(found, "dtctl_hub_workers", state="live") == workers["live"] == 1
    assert total(found, "dtctl_hub_workers", state="lost") == workers["lost"]
    for kind, key in (("orchestration", "orchestrations"), ("activity", "activities")):
        for state in ("leased", "limit"):
            assert (
                total(found, "dtctl_hub_worker_slots", kind=kind, state=state) == workers["slots"][key][state]
            )
    scale = top["scale"]
    assert total(found, "dtctl_hub_scale_recommendation") == scale["recommended_workers"] > 0
    assert (
        total(found, "dtctl_hub_scale_live_work_items", kind="orchestration") == scale["live_orchestrations"]
    )
    assert total(found, "dtctl_hub_scale_live_work_items", kind="activity") == scale["live_activities"]
    unclaimable = sum(b["count"] for b in top["unclaimable_backlog"])
    assert total(found, "dtctl_hub_unclaimable_backlog") == unclaimable == 3
    # The state the test built, so equality is not 0 == 0.
    assert queues["orchestration_inbox"]["waiting"] == 3 and queues["orchestration_inbox"]["later"] == 1
    assert queues["activity_queue"]["leased"] == 1
    assert top["instances"]["pending"] == 4 and top["instances"]["running"] == 1
