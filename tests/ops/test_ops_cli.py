"""The operator commands' edges: KEDA output without a database, corrupt and missing hubs."""

from __future__ import annotations

import json
from pathlib import Path

from dtctl.client import TaskHubClient
from dtctl.hub import open_hub
from tests.helpers import dtctl


def test_keda_for_a_postgresql_hub_needs_no_connection_and_shows_no_password() -> None:
    url = "postgresql://app:s3cret-pw@db.example:5432/orders?hub=eu"
    result = dtctl(
        "--hub", url, "scale-recommend", "--keda", "--max-orchestrations", "8", "--max-activities", "4",
        "--deployment", "orders-worker", "--min-replicas", "1",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "s3cret-pw" not in result.stdout + result.stderr
    assert 'query: "SELECT dtctl_eu.scale_recommendation(8, 4)"' in result.stdout
    assert 'connectionFromEnv: "DTCTL_KEDA_CONNECTION"' in result.stdout
    assert 'targetQueryValue: "1"' in result.stdout
    assert 'name: "orders-worker"' in result.stdout and "minReplicaCount: 1" in result.stdout
    # The variable KEDA reads must not carry dtctl's hub parameter: the value to set is shown without it.
    assert "DTCTL_KEDA_CONNECTION=postgresql://app:***@db.example:5432/orders\n" in result.stdout
    assert "?hub=" in result.stderr and "hub=eu" not in result.stderr
    import yaml  # a test dependency: a missing yaml must fail, not skip

    assert yaml.safe_load(result.stdout)["kind"] == "ScaledObject"


def test_keda_on_a_sqlite_hub_prints_the_number_and_says_why(tmp_path: Path) -> None:
    hub = tmp_path / "hub.db"
    open_hub(str(hub), create=True).close()
    result = dtctl("scale-recommend", "--keda", hub=hub)
    assert result.returncode == 0 and result.stdout == "0\n"
    assert "KEDA needs the PostgreSQL hub" in result.stderr and result.stderr.count("\n") == 2


def test_doctor_on_a_corrupt_file_exits_8(tmp_path: Path) -> None:
    hub = tmp_path / "hub.db"
    hub.write_bytes(b"this is not a database" * 100)
    result = dtctl("doctor", "--json", hub=hub)
    assert result.returncode == 8
    [finding] = json.loads(result.stdout)["findings"]
    assert (finding["check"], finding["severity"], finding["area"]) == ("open", "problem", "hub")


def test_doctor_on_a_missing_hub_exits_3(tmp_path: Path) -> None:
    result = dtctl("doctor", hub=tmp_path / "nothing.db")
    assert result.returncode == 3 and result.stderr.startswith("error: ")


def test_list_points_out_ready_work_no_live_worker_can_take(tmp_path: Path) -> None:
    hub = tmp_path / "hub.db"
    with TaskHubClient(open_hub(str(hub), create=True)) as client:
        client.start_instance("nobody_runs_this", instance_id="a")
    listed = dtctl("list", "--json", hub=hub)
    assert listed.returncode == 0 and json.loads(listed.stdout)["instances"][0]["instance_id"] == "a"
    assert "no worker is running" in listed.stderr and "'nobody_runs_this' (1 instance)" in listed.stderr
