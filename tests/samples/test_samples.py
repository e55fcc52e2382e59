"""Every sample runs to completion against real worker processes, started the way a user would."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dtctl.client import TaskHubClient
from dtctl.core.history import COMPLETED
from dtctl.hub import open_hub
from tests.helpers import REPO, child_env

CASES: list[tuple[str, str, Any, Any]] = [
    ("hello_cities", "hello_cities", None, ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]),
    ("fan_out_fan_in", "fan_out_fan_in", 20, {"items": 20, "total": sum(n * n for n in range(20))}),
    ("sub_orchestrations", "provision_all", ["dev-a", "dev-b"], ["dev-a: ready", "dev-b: ready"]),
    ("retries", "flaky_workflow", "order-7", "charged order-7 on attempt 3"),
    ("versioning", "process_order", "o-1", ["charged o-1", "shipped o-1"]),  # no version: the old path
    (
        "monitor",
        "monitor",
        {"checks": 0, "max_checks": 3, "interval_seconds": 0.05},
        {"checks": 3, "healthy": 3},
    ),
    (
        "human_interaction",
        "approval_workflow",
        {"request": "new laptop", "timeout_seconds": 0.2},
        "timed out: new laptop",
    ),
    ("entities_counter", "count_to", 3, 3),
    (
        "entities_bank",
        "transfer",
        {"source": "alice", "target": "bob", "amount": 30},
        {"source": 0, "target": 0},  # alice has nothing: the transfer is refused, nothing moves
    ),
    ("entities_aggregator", "feed_readings", 100, {"count": 100, "sum": 4950, "min": 0, "max": 99}),
]


class Workers:
    def __init__(self, hub_file: Path, sample: str, state_dir: Path) -> None:
        command = [
            sys.executable,
            "-m",
            "dtctl",
            "--hub",
            str(hub_file),
            "worker",
            f"samples/{sample}.py:app",
            "--concurrency",
            "2",
        ]
        self.process = subprocess.Popen(
            command,
            cwd=REPO,
            env=child_env(DTCTL_SAMPLE_STATE=str(state_dir)),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def stop(self) -> str:
        self.process.send_signal(signal.SIGTERM)
        out, _ = self.process.communicate(timeout=30)
        assert self.process.returncode == 0, out
        return out


@pytest.fixture
def hub_file(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "hub.db"
    open_hub(str(path), create=True).close()
    yield path


def _run_sample(hub_file: Path, tmp_path: Path, sample: str, name: str, value: Any, instance_id: str) -> Any:
    workers = Workers(hub_file, sample, tmp_path / "state")
    try:
        with TaskHubClient(str(hub_file)) as client:
            client.start_instance(name, input=value, instance_id=instance_id)
            final = client.wait_for_completion(instance_id, timeout=60)
            assert final.status == COMPLETED, final.failure
            return client.decode_output(final)
    finally:
        workers.stop()


@pytest.mark.parametrize(("sample", "name", "value", "expected"), CASES, ids=[c[0] for c in CASES])
def test_sample_completes(
    hub_file: Path, tmp_path: Path, sample: str, name: str, value: Any, expected: Any
) -> None:
    assert _run_sample(hub_file, tmp_path, sample, name, value, "sample-1") == expected


def test_human_interaction_approved_by_event(hub_file: Path, tmp_path: Path) -> None:
    workers = Workers(hub_file, "human_interaction", tmp_path / "state")
    try:
        with TaskHubClient(str(hub_file)) as client:
            client.start_instance(
                "approval_workflow", input={"request": "desk", "timeout_seconds": 3600}, instance_id="req"
            )
            client.raise_event("req", "Approval", {"approved": True, "by": "kim"})
            final = client.wait_for_completion("req", timeout=60)
            assert client.decode_output(final) == "approved by kim: desk"
    finally:
        workers.stop()


def test_order_processing_ships_and_cancels(hub_file: Path, tmp_path: Path) -> None:
    good = {
        "order_id": "o1",
        "customer": "ada",
        "lines": [{"sku": "book", "qty": 2}, {"sku": "pen", "qty": 10}],
    }
    bad = {
        "order_id": "o2",
        "customer": "bob",
        "lines": [{"sku": "book", "qty": 1}, {"sku": "unicorn", "qty": 1}],
    }
    workers = Workers(hub_file, "order_processing", tmp_path / "state")
    try:
        with TaskHubClient(str(hub_file)) as client:
            client.start_instance("process_order", input=good, instance_id="o1")
            client.start_instance("process_order", input=bad, instance_id="o2")
            shipped = client.decode_output(client.wait_for_completion("o1", timeout=60))
            cancelled = client.decode_output(client.wait_for_completion("o2", timeout=60))
    finally:
        workers.stop()
    assert shipped["status"] == "shipped" and shipped["total"] == 37.0
    assert cancelled["status"] == "cancelled" and "unicorn" in cancelled["reason"]
