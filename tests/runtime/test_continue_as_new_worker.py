"""Continue-as-new with save_events through a real worker: carried-over events come before later ones."""

from __future__ import annotations

from pathlib import Path

import dtctl
from dtctl.client import TaskHubClient
from dtctl.hub import open_hub
from tests.helpers import WorkerProcess, wait_until


def test_saved_events_are_delivered_before_events_raised_during_the_ending_episode(tmp_path: Path) -> None:
    hub_path = tmp_path / "taskhub.db"
    open_hub(hub_path, create=True).close()
    entered, gate = tmp_path / "entered", tmp_path / "gate"
    worker = WorkerProcess(hub_path, "tests.apps.carryover:app", tmp_path / "logs")
    try:
        with TaskHubClient(str(hub_path)) as client:
            state = {"generation": 0, "entered": str(entered), "gate": str(gate)}
            client.start_instance("collector", input=state, instance_id="c")
            client.raise_event("c", "x", 1)  # received by generation 0, which never reads it: saved
            client.raise_event("c", "start", None)
            wait_until(entered.exists, what="the ending episode to be running")
            client.raise_event("c", "x", 2)  # arrive while that episode runs
            client.raise_event("c", "x", 3)
            gate.touch()
            done = client.wait_for_completion("c", timeout=30)
            assert done.status == dtctl.COMPLETED, worker.log()
            assert client.decode_output(done) == [1, 2, 3]
    finally:
        worker.stop()
