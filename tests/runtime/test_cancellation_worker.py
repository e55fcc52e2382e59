"""A cancelled timer through a real worker process: its timer_fired row is gone in the same checkpoint."""

from __future__ import annotations

from pathlib import Path

import dtctl
from dtctl.client import TaskHubClient
from dtctl.hub import open_hub
from tests.helpers import WorkerProcess, wait_until


def test_the_losing_timer_of_when_any_is_deleted_and_never_fires(tmp_path: Path) -> None:
    hub_path = tmp_path / "taskhub.db"
    open_hub(hub_path, create=True).close()
    worker = WorkerProcess(hub_path, "tests.apps.cancelling:app", tmp_path / "logs")
    try:
        with TaskHubClient(str(hub_path)) as client:
            client.start_instance("approval_or_timeout", instance_id="a")

            def pending_kinds() -> list[str]:
                return [m.event.kind for m in client.hub.pending_messages("a")]

            wait_until(lambda: pending_kinds() == ["timer_fired"], what="the timer to be scheduled")
            client.raise_event("a", "approval", True)

            def history() -> list[str]:
                return [r.event.kind for r in client.get_history("a")]

            wait_until(lambda: "timer_cancelled" in history(), what="the cancellation to be recorded")
            assert pending_kinds() == []  # deleted in the checkpoint that recorded the cancellation
            client.raise_event("a", "finish", "shipped")
            state = client.wait_for_completion("a", timeout=30)
            assert state.status == dtctl.COMPLETED, worker.log()
            assert client.decode_output(state) == "approved, then shipped"
            assert "timer_fired" not in history()
    finally:
        worker.stop()
