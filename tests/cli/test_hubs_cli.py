"""Bad hubs and bad apps never give a traceback: each has its message, its hint and its exit code.
Also init, worker and demo, the commands that create or run things."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

from tests.cli.conftest import Cli, run
from tests.helpers import REPO

# A command per kind of hub access: read one instance, list, write, history, purge.
HUB_COMMANDS = [
    ("status", "x"),
    ("list",),
    ("start-instance", "ok"),
    ("history", "show", "x"),
    ("purge", "--all", "--dry-run"),
]


def _clean(result_err: str) -> None:
    assert "Traceback" not in result_err and "internal error" not in result_err


@pytest.mark.parametrize("command", HUB_COMMANDS)
def test_a_missing_hub_suggests_init(tmp_path: Path, command: tuple[str, ...]) -> None:
    result = run("--hub", str(tmp_path / "missing.db"), *command)
    assert result.code == 3 and result.out == ""
    assert "no hub at" in result.err and "dtctl init" in result.err
    _clean(result.err)
    assert not (tmp_path / "missing.db").exists()  # reading never creates a hub


@pytest.mark.parametrize("command", HUB_COMMANDS)
def test_a_directory_is_not_a_hub(tmp_path: Path, command: tuple[str, ...]) -> None:
    result = run("--hub", str(tmp_path), *command, "--json")
    assert result.code == 8 and result.out == "" and "directory" in result.err
    _clean(result.err)


@pytest.mark.parametrize("command", HUB_COMMANDS)
def test_a_file_that_is_not_a_database(tmp_path: Path, command: tuple[str, ...]) -> None:
    junk = tmp_path / "notes.db"
    junk.write_text("these are my notes, not a task hub\n" * 20)
    result = run("--hub", str(junk), *command)
    assert result.code == 8 and "not a SQLite database" in result.err
    _clean(result.err)


@pytest.mark.parametrize("command", HUB_COMMANDS)
def test_a_hub_from_a_newer_dtctl(hub_file: Path, command: tuple[str, ...]) -> None:
    with sqlite3.connect(hub_file) as db:
        db.execute("PRAGMA user_version = 999")
    result = run("--hub", str(hub_file), *command)
    assert result.code == 7 and "newer than this dtctl" in result.err
    _clean(result.err)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_an_unreadable_hub(hub_file: Path) -> None:
    hub_file.chmod(0)
    try:
        result = run("--hub", str(hub_file), "list")
    finally:
        hub_file.chmod(0o600)
    assert result.code in (3, 8) and result.err.startswith("error: ")
    _clean(result.err)


def test_init_creates_a_hub_and_its_json_shape(tmp_path: Path) -> None:
    target = tmp_path / "new.db"
    created = run("--hub", str(target), "init", "--json").json()
    assert created["created"] is True and Path(created["hub"]).name == "new.db"
    assert oct(target.stat().st_mode & 0o777) == "0o600"
    assert run("--hub", str(target), "init").code == 0  # safe to run again
    assert run("--hub", str(tmp_path), "init").code == 8


def test_worker_reports_an_app_that_does_not_import(cli: Cli, tmp_path: Path) -> None:
    broken = tmp_path / "broken_app.py"
    broken.write_text("import dtctl\napp = dtctl.App()\nraise ValueError('boom at import')\n")
    result = cli("worker", f"{broken}:app")
    assert result.code == 2
    assert "importing 'broken_app' failed: ValueError: boom at import" in result.err
    _clean(result.err)
    assert cli("worker", "no/such/file.py:app").code == 2
    assert cli("worker", "no_such_module_anywhere:app").code == 2
    assert cli("worker", "samples/order_processing.py").code == 2  # no :attribute


def test_worker_reports_an_attribute_that_is_not_an_app(cli: Cli) -> None:
    result = cli("worker", f"{REPO / 'samples' / 'order_processing.py'}:PRICES")
    assert result.code == 2 and "is a dict, not a dtctl App" in result.err
    assert "dtctl.App()" in result.err  # the hint
    missing = cli("worker", f"{REPO / 'samples' / 'order_processing.py'}:nothing_here")
    assert missing.code == 2 and "has no attribute 'nothing_here'" in missing.err


def test_worker_burst_runs_the_backlog(cli: Cli) -> None:
    cli("start-instance", "ok", "--id", "b-1", "--input", "5")
    ran = cli("worker", "tests/cli/cli_app.py:app", "--burst")
    assert ran.code == 0 and ran.out == ""
    assert cli("wait", "b-1", "--timeout", "10").out == "5\n"


def test_demo_json_is_one_object_with_the_instance_and_its_history(tmp_path: Path) -> None:
    result = run("--hub", str(tmp_path / "demo.db"), "demo", "--json")
    data = result.json()
    assert set(data) == {"instance", "history"}
    assert data["instance"]["status"] == "COMPLETED"
    assert data["instance"]["output"] == ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]
    assert data["history"][-1]["kind"] == "execution_completed"
    assert "started hello_cities" in result.err  # messages go to stderr
    json.dumps(data)  # and stdout held nothing else
