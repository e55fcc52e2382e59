"""Output rules every command shares: --json/-o in both positions, usage lines, help, and no ANSI codes
unless stdout is a terminal and NO_COLOR is unset."""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main

from dtctl import __version__
from dtctl.cli import options
from dtctl.cli.main import app
from dtctl.cli.manpages import walk
from tests.cli.conftest import Cli, run
from tests.helpers import REPO, child_env

ANSI = "\x1b["


def leaf_commands() -> Iterator[tuple[tuple[str, ...], Any]]:
    root = typer.main.get_command(app)
    for path, command in walk(root, ()):
        if path and not hasattr(command, "commands"):
            yield path, command


def test_json_is_accepted_before_and_after_the_command(done_cli: Cli) -> None:
    after = done_cli("status", "ok-1", "--json")
    before = done_cli("--json", "status", "ok-1")
    short_after = done_cli("status", "ok-1", "-o", "json")
    short_before = done_cli("-o", "json", "status", "ok-1")
    assert after.json() == before.json() == short_after.json() == short_before.json()
    assert json.loads(done_cli("history", "show", "ok-1", "--json").out)[0]["sequence"] == 0
    overridden = done_cli("--json", "status", "ok-1", "-o", "text")
    assert overridden.code == 0 and overridden.out.startswith("instance")
    bad = done_cli("status", "ok-1", "-o", "yaml")
    assert bad.code == 2 and "must be 'json' or 'text'" in bad.err


def test_every_command_has_the_one_shared_output_option() -> None:
    callbacks = set()
    for path, command in leaf_commands():
        by_flag = {opt: p for p in command.params for opt in getattr(p, "opts", ())}
        assert "--json" in by_flag and "-o" in by_flag, f"dtctl {' '.join(path)} lacks --json / -o"
        callbacks.add(by_flag["--json"].callback)
        callbacks.add(by_flag["-o"].callback)
    # one implementation: every command's options are copies of the same two, with the same callbacks
    assert callbacks == {p.callback for p in options.output_options()}
    assert len(callbacks) == 2


def test_json_output_is_only_json_and_state_does_not_leak_between_runs(done_cli: Cli) -> None:
    shaped = done_cli("list", "--json")
    json.loads(shaped.out)
    plain = done_cli("list")  # the same process: --json of the previous run is forgotten
    assert plain.out.startswith(" INSTANCE") or plain.out.startswith("INSTANCE")


def test_usage_lines_read_id_name() -> None:
    assert "Usage: dtctl status [OPTIONS] ID\n" in run("status", "--help").out
    assert "Usage: dtctl raise-event [OPTIONS] ID NAME\n" in run("raise-event", "--help").out
    assert "Usage: dtctl purge [OPTIONS] [ID]...\n" in run("purge", "--help").out
    missing = run("status")
    assert missing.code == 2 and "Usage: dtctl status [OPTIONS] ID" in missing.err
    assert "{" not in missing.err


@pytest.mark.parametrize("path", [" ".join(p) for p, _c in leaf_commands()])
def test_every_command_has_help_with_an_example(path: str) -> None:
    shown = run(*path.split(), "--help")
    assert shown.code == 0 and "Example:" in shown.out, f"dtctl {path} --help has no example"


def test_version_and_completion() -> None:
    version = run("--version")
    assert (version.code, version.out) == (0, f"dtctl {__version__}\n")
    script = run("completion", "bash")
    assert script.code == 0 and "_DTCTL_COMPLETE=complete_bash" in script.out
    shaped = run("completion", "zsh", "--json").json()
    assert shaped["shell"] == "zsh" and "compdef" in shaped["script"]
    assert run("completion", "tcsh").code == 2
    assert "--install-completion" in run("--help").out


def _argv(path: tuple[str, ...], tmp: Path) -> list[str]:
    """Arguments that make each command do real work on a hub holding finished instances."""
    known: dict[tuple[str, ...], list[str]] = {
        ("start-instance",): ["ok", "--input", "1"],
        ("raise-event",): ["ok-1", "go"],
        ("terminate",): ["terminated-1"],
        ("suspend",): ["ok-1"],
        ("resume",): ["ok-1"],
        ("status",): ["fails-1"],
        ("wait",): ["fails-1"],
        ("list",): [],
        ("purge",): ["--all", "--dry-run"],
        ("history", "show"): ["fails-1"],
        ("worker",): ["no/such/app.py:app"],
        ("init",): [],
        ("demo",): ["--help"],  # runs a worker; covered by tests/cli/test_hubs_cli.py
        ("dashboard",): ["--help"],  # serves until stopped; covered by tests/dashboard
        ("serve",): ["--help"],  # serves until stopped; covered by tests/serve
        ("metrics", "serve"): ["--help"],  # serves until stopped; covered by tests/observe
        ("completion",): ["bash"],
        ("top",): ["--once"],
        ("hub", "backup"): [str(tmp / "backup.db")],
    }
    return [*path, *known.get(path, [])]


def test_no_command_prints_ansi_codes_when_not_on_a_tty(finished_hub: Path, tmp_path: Path) -> None:
    hub_file = tmp_path / "hub.db"
    shutil.copyfile(finished_hub, hub_file)
    for path, _command in leaf_commands():
        for extra in ([], ["--json"]):
            result = run("--hub", str(hub_file), *_argv(path, tmp_path), *extra)
            where = f"dtctl {' '.join(path)} {' '.join(extra)}"
            assert ANSI not in result.out and ANSI not in result.err, where
            assert result.code != 1, f"{where}: {result.err}"
    for timeline in (["--timeline"], ["--payloads"], ["--follow"]):
        result = run("--hub", str(hub_file), "history", "show", "fails-1", *timeline)
        assert result.code == 0 and ANSI not in result.out + result.err


def _on_a_terminal(args: list[str], **env: str) -> tuple[int, str]:
    """Run the CLI with stdout and stderr on a pseudo-terminal; return its exit code and output."""
    leader, follower = pty.openpty()
    environment = child_env(TERM="xterm-256color", COLUMNS="160", **env)
    for name in ("NO_COLOR", "FORCE_COLOR"):
        if name not in env:
            environment.pop(name, None)
    process = subprocess.Popen(
        [sys.executable, "-m", "dtctl", *args],
        cwd=REPO,
        env=environment,
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=follower,
    )
    os.close(follower)
    chunks: list[bytes] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.1)
        if ready:
            try:
                data = os.read(leader, 65536)
            except OSError:  # the terminal closed: the child is gone
                break
            if not data:
                break
            chunks.append(data)
        elif process.poll() is not None:
            break
    os.close(leader)
    return process.wait(timeout=30), b"".join(chunks).decode("utf-8", "replace")


def test_colours_on_a_terminal_and_none_with_no_color(finished_hub: Path) -> None:
    args = ["--hub", str(finished_hub), "status", "fails-1"]
    code, coloured = _on_a_terminal(args)
    assert code == 0 and ANSI in coloured  # the TTY sees rich colours (so the check below means something)
    code, plain = _on_a_terminal(args, NO_COLOR="1")
    assert code == 0 and ANSI not in plain and "FAILED" in plain
    code, errors = _on_a_terminal(["--hub", str(finished_hub), "status", "nope"], NO_COLOR="1")
    assert code == 3 and ANSI not in errors and "error: no instance 'nope'" in errors


def test_purge_shows_progress_on_a_terminal_and_ends_with_a_summary(
    finished_hub: Path, tmp_path: Path
) -> None:
    hub_file = tmp_path / "hub.db"
    shutil.copyfile(finished_hub, hub_file)
    code, shown = _on_a_terminal(["--hub", str(hub_file), "purge", "--all", "--batch-size", "2"])
    assert code == 0 and "purged" in shown and "instance(s)" in shown
