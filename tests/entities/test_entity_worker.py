"""Entities on a real worker process: what ``status`` says about an orchestration that waits on an entity
call or lock, lock release when the holder is terminated, and the ``dtctl entity`` commands."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dtctl.client import TaskHubClient
from dtctl.core.history import COMPLETED
from dtctl.hub import open_hub
from tests.helpers import WorkerProcess, dtctl, json_out, wait_until

APP = "tests/apps/entities.py:app"


@pytest.fixture
def hub_file(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "hub.db"
    open_hub(str(path), create=True).close()
    worker = WorkerProcess(path, APP, tmp_path / "logs", lease_seconds=5.0)
    yield path
    worker.stop()


def _holder(client: TaskHubClient, entity_id: str) -> str | None:
    found = client.get_entity(entity_id)
    return None if found is None or found.lock is None else found.lock.instance_id


def test_status_says_which_entity_call_or_lock_an_instance_waits_for(hub_file: Path) -> None:
    with TaskHubClient(str(hub_file)) as client:
        client.start_instance("hold_lock", input="k", instance_id="h1")
        wait_until(lambda: _holder(client, "@counter@k") == "h1", what="h1 to hold the lock")
        client.start_instance("hold_lock", input="k", instance_id="h2")
        client.start_instance("add_calls", input={"key": "k", "count": 1}, instance_id="caller")

        def waits() -> bool:
            h2 = client.waiting_for("h2").entity_requests
            calls = client.waiting_for("caller").entity_requests
            return bool(h2 and calls and h2[0].held_by == ("h1",))

        wait_until(waits, what="both to wait on the entity")
        [call] = client.waiting_for("caller").entity_requests
        assert (call.kind, call.operation, call.entity_ids, call.state) == (
            "call",
            "add",
            ("@counter@k",),
            "waiting",
        )
        shown = dtctl("status", "h2", hub=hub_file)
        assert "entity locks @counter@k" in shown.stdout and "held by h1" in shown.stdout, shown.stdout
        as_json = json_out(dtctl("--json", "status", "caller", hub=hub_file))
        assert as_json["waiting_for"]["entity_requests"][0]["operation"] == "add"
        # the holder ends (terminated inside its critical section): its lock goes, the others go on
        client.terminate("h1", "stop")
        wait_until(lambda: _holder(client, "@counter@k") == "h2", what="h2 to get the lock after h1 ended")
        client.raise_event("h2", "go")
        assert client.decode_output(client.wait_for_completion("h2", timeout=30)) >= 1
        assert client.wait_for_completion("caller", timeout=30).status == COMPLETED
        wait_until(lambda: _holder(client, "@counter@k") is None, what="the lock to be released")
        assert client.get_entity_state("@counter@k") == 2


def test_entity_commands(hub_file: Path) -> None:
    assert dtctl("entity", "signal", "@counter@c", "add", "--data", "4", hub=hub_file).returncode == 0
    with TaskHubClient(str(hub_file)) as client:
        wait_until(lambda: client.get_entity_state("@counter@c") == 4, what="the signal to be applied")
        client.start_instance("call_then_fail", input="f", instance_id="f")
        out = client.decode_output(client.wait_for_completion("f", timeout=30))
    assert out == {"failed": "asked to fail", "value": 5}  # the failed operation's change rolled back
    listed = json_out(dtctl("--json", "entity", "list", "--name", "COUNTER", hub=hub_file))
    assert [(e["entity_id"], e["state"]) for e in listed["entities"]] == [
        ("@counter@c", 4),
        ("@counter@f", 5),
    ]
    shown = json_out(dtctl("--json", "entity", "show", "@counter@c", hub=hub_file))
    assert shown["state"] == 4 and shown["messages"] == [] and shown["locked_by"] is None
    via_history = json_out(dtctl("--json", "history", "show", "@counter@f", hub=hub_file))
    assert via_history["state"] == 5 and via_history["messages"] == []
    assert dtctl("history", "show", "@counter@f", "--follow", hub=hub_file).returncode == 2
    assert dtctl("entity", "show", "@counter@nope", hub=hub_file).returncode == 3
    assert dtctl("entity", "show", "counter", hub=hub_file).returncode == 2
    assert dtctl("entity", "signal", "@counter@c", "delete", hub=hub_file).returncode == 0
    with TaskHubClient(str(hub_file)) as client:
        wait_until(lambda: client.get_entity_state("@counter@c") is None, what="the delete")
    dry = json_out(dtctl("--json", "entity", "clean", "--dry-run", hub=hub_file))
    assert dry == {"empty_entities_removed": 1, "orphaned_locks_released": 0, "dry_run": True}
    done = json_out(dtctl("--json", "entity", "clean", hub=hub_file))
    assert done["empty_entities_removed"] == 1
    assert dtctl("entity", "show", "@counter@c", hub=hub_file).returncode == 3


def test_top_counts_entity_batches(hub_file: Path) -> None:
    with TaskHubClient(str(hub_file)) as client:
        for n in range(20):
            client.signal_entity(f"@counter@top{n % 4}", "add", 1)

        def applied() -> bool:
            found = [client.get_entity_state(f"@counter@top{k}") for k in range(4)]
            return found == [5, 5, 5, 5]

        wait_until(applied, what="the 20 signals to be applied")
    top = json_out(dtctl("--json", "top", "--once", hub=hub_file))
    assert top["throughput_per_second"]["entity_batches"] > 0
    assert top["latency"]["entity_batches"]["samples"] >= 4
    assert top["failures"]["entity_batches"] == 0
