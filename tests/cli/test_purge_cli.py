"""dtctl purge: selection, --dry-run, batches, resumability, and its exit codes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from dtctl.client import TaskHubClient
from tests.cli.conftest import CLI_APP, Cli, burst, make_hub

REPORT_KEYS = {"dry_run", "matched", "purged", "by_status", "not_found", "not_finished"}


@pytest.fixture(scope="module")
def mixed_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """5 COMPLETED, 1 FAILED, 1 TERMINATED and 1 RUNNING instance."""
    hub_file = make_hub(tmp_path_factory.mktemp("mixed") / "hub.db")
    with TaskHubClient(hub_file) as client:
        for n in range(5):
            client.start_instance("ok", input=n, instance_id=f"ok-{n}")
        client.start_instance("fails", input="boom", instance_id="bad")
        client.start_instance("gate", instance_id="stopped")
        client.start_instance("gate", instance_id="running")
    burst(hub_file, CLI_APP)
    with TaskHubClient(hub_file) as client:
        client.terminate("stopped")
    burst(hub_file, CLI_APP)
    return hub_file


@pytest.fixture
def mixed(mixed_template: Path, hub_file: Path) -> Path:
    """A fresh copy of the template for each test (the hub file is closed, its WAL checkpointed)."""
    assert not Path(f"{mixed_template}-wal").exists()
    shutil.copyfile(mixed_template, hub_file)
    return hub_file


def _ids(client: TaskHubClient) -> set[str]:
    return {s.instance_id for s in client.list_instances(limit=1000).instances}


def test_dry_run_counts_and_changes_nothing(cli: Cli, mixed: Path) -> None:
    report = cli("purge", "--all", "--dry-run", "--json").json()
    assert set(report) == REPORT_KEYS
    assert report == {
        "dry_run": True,
        "matched": 7,
        "purged": 0,
        "by_status": {"COMPLETED": 5, "FAILED": 1, "TERMINATED": 1},
        "not_found": [],
        "not_finished": [],
    }
    with TaskHubClient(mixed) as client:
        assert len(_ids(client)) == 8
    text = cli("purge", "--status", "FAILED", "--dry-run")
    assert text.code == 0 and text.out == "" and "would purge 1 instance(s) (1 FAILED)" in text.err


def test_purge_by_filter_in_batches(cli: Cli, mixed: Path) -> None:
    young = cli("purge", "--older-than", "1h", "--json").json()
    assert (young["matched"], young["purged"]) == (0, 0)  # they finished seconds ago
    done = cli("purge", "--status", "completed", "--older-than", "0s", "--batch-size", "2", "--json").json()
    assert (done["matched"], done["purged"], done["by_status"]) == (5, 5, {"COMPLETED": 5})
    with TaskHubClient(mixed) as client:
        assert _ids(client) == {"bad", "stopped", "running"}
        assert client.hub.pending_activities("ok-1") == []
    rest = cli("purge", "--all")
    assert rest.code == 0 and "purged 2 instance(s)" in rest.err
    with TaskHubClient(mixed) as client:
        assert _ids(client) == {"running"}  # a running instance is never purged


def test_purge_by_ids_and_its_failures(cli: Cli, mixed: Path) -> None:
    ok = cli("purge", "ok-0", "ok-1", "--json").json()
    assert (ok["purged"], ok["not_found"], ok["not_finished"]) == (2, [], [])
    missing = cli("purge", "ok-2", "ghost", "--json")
    assert missing.code == 3 and "ghost" in missing.err
    report = json.loads(missing.out)
    assert (report["purged"], report["not_found"]) == (1, ["ghost"])  # the others are still purged
    live = cli("purge", "running", "ok-3")
    assert live.code == 4 and "not finished" in live.err and "running" in live.err
    with TaskHubClient(mixed) as client:
        assert "ok-3" not in _ids(client) and "running" in _ids(client)


@pytest.mark.parametrize(
    "args",
    [
        ("purge",),
        ("purge", "--status", "RUNNING"),
        ("purge", "--status", "whatever"),
        ("purge", "--older-than", "a while"),
        ("purge", "--all", "--batch-size", "0"),
    ],
)
def test_purge_usage_errors(cli: Cli, args: tuple[str, ...]) -> None:
    failed = cli(*args)
    assert failed.code == 2 and failed.out == "" and "Traceback" not in failed.err


def test_an_interrupted_purge_resumes_where_it_stopped(mixed: Path) -> None:
    with TaskHubClient(mixed) as client:
        batches = client.purge_batches(statuses=["COMPLETED"], batch_size=2)
        assert next(batches) == 2  # one batch committed, then the purge is stopped
        batches.close()
        assert client.count_purgeable(statuses=["COMPLETED"]) == {"COMPLETED": 3}
        assert sum(client.purge_batches(statuses=["COMPLETED"], batch_size=2)) == 3
        assert client.count_purgeable(statuses=["COMPLETED"]) == {}
