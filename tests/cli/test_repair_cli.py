"""dtctl rewind, restart and purge's new selection flags: output, --json, exit codes."""

from __future__ import annotations

from pathlib import Path

from dtctl.client import TaskHubClient
from tests.cli.conftest import CLI_APP, Cli, burst
from tests.cli.test_purge_cli import mixed, mixed_template  # noqa: F401 (fixtures)


def test_rewind_of_an_instance_that_did_not_fail_exits_4_with_the_reason(cli: Cli, mixed: Path) -> None:  # noqa: F811
    result = cli("rewind", "ok-1")
    assert result.code == 4
    assert "ok-1" in result.err and "is COMPLETED; only a FAILED instance can be rewound" in result.err
    assert cli("rewind", "nope").code == 3


def test_rewind_of_a_failed_instance_reports_what_it_rewound(cli: Cli, mixed: Path) -> None:  # noqa: F811
    result = cli("--json", "rewind", "bad", "--reason", "fixed")
    assert result.code == 0, result.err
    assert result.json() == {"instance_id": "bad", "rewound": ["bad"]}
    with TaskHubClient(mixed) as client:
        assert client.get_instance_or_raise("bad").status == "RUNNING"
    burst(
        mixed, CLI_APP
    )  # the activity still fails: the rewound instance fails again, and can be rewound again
    assert cli("rewind", "bad").code == 0


def test_restart_with_and_without_new_id(cli: Cli, mixed: Path) -> None:  # noqa: F811
    same = cli("--json", "restart", "ok-2")
    assert same.code == 0 and same.json() == {"instance_id": "ok-2", "started": "ok-2"}
    fresh = cli("--json", "restart", "ok-3", "--new-id")
    started = fresh.json()["started"]
    assert started != "ok-3"
    assert cli("restart", "running").code == 4
    burst(mixed, CLI_APP)
    with TaskHubClient(mixed) as client:
        assert client.get_instance_or_raise("ok-2").status == "COMPLETED"
        assert client.get_instance_or_raise(started).input == client.get_instance_or_raise("ok-3").input


def test_purge_by_creation_time(cli: Cli, mixed: Path) -> None:  # noqa: F811
    none = cli("--json", "purge", "--created-before", "1d", "--dry-run")
    assert none.json()["matched"] == 0
    every = cli("--json", "purge", "--created-after", "1d", "--dry-run")
    assert every.json()["matched"] == 7  # every finished one: all were created a moment ago
    done = cli("--json", "purge", "--created-after", "1d", "--status", "COMPLETED", "--no-recursive")
    assert done.json()["purged"] == 5
