"""Instance ids and names are checked where they enter (CLI, client, app registration): bad input
exits 2 with a one-line message naming what is wrong, and nothing is stored."""

from __future__ import annotations

from pathlib import Path

import pytest

import dtctl
from dtctl.client import StartRequest, TaskHubClient
from dtctl.core import names
from dtctl.errors import ExitCode, HubBusy, InvalidName
from tests.cli.conftest import Cli

BAD_NEW_IDS = {
    "bad\nid": "U+000A",
    "tab\there": "U+0009",
    "esc\x1b[31m": "U+001B",
    "del\x7f": "U+007F",
    "c1\x85": "U+0085",
    "line\u2028sep": "U+2028",
    "bidi\u202eevil": "U+202E",
    "a/b": "'/'",
    "a\\b": "'\\\\'",
    "a#b": "'#'",
    "a?b": "'?'",
    "@entity": "'@'",
    "x" * 257: "257 characters",
    " padded": "white space",
}


@pytest.mark.parametrize(("bad", "named"), list(BAD_NEW_IDS.items()))
def test_start_instance_refuses_a_bad_id_and_stores_nothing(
    cli: Cli, client: TaskHubClient, bad: str, named: str
) -> None:
    result = cli("start-instance", "hello", "--id", bad)
    assert result.code == ExitCode.USAGE, result.err
    [line] = result.err.strip().splitlines()
    assert "instance id" in line and named in line, line
    assert client.list_instances().instances == []


def test_the_longest_id_and_printable_unicode_are_accepted(cli: Cli, client: TaskHubClient) -> None:
    for good in ("x" * 256, "order:2024-01-01T10:00 (ü, 東京, 🙂)", "a.b-c_d=e&f"):
        assert cli("start-instance", "hello", "--id", good).code == 0
        assert client.get_instance(good) is not None


@pytest.mark.parametrize("bad", ["", "evt\nname", "e" * 257, "\x00"])
def test_raise_event_refuses_a_bad_event_name(cli: Cli, client: TaskHubClient, bad: str) -> None:
    client.start_instance("gate", instance_id="target")
    before = client.hub.pending_messages("target")
    result = cli("raise-event", "--", "target", bad)
    assert result.code == ExitCode.USAGE, result.err
    assert len(result.err.strip().splitlines()) == 1
    assert client.hub.pending_messages("target") == before


@pytest.mark.parametrize(
    "args",
    [
        ["start-instance", "bad\nname"],
        ["raise-event", "--", "bad\nid", "go"],
        ["terminate", "--", "bad\nid"],
        ["suspend", "--", "bad\rid"],
        ["resume", "--", "bad\x1bid"],
        ["status", "--", "bad\nid"],
        ["purge", "--", "bad\nid"],
        ["history", "show", "--", "bad\nid"],
    ],
)
def test_every_command_refuses_control_characters_with_exit_2(cli: Cli, args: list[str]) -> None:
    result = cli(*args)
    assert result.code == ExitCode.USAGE, (args, result.err)
    assert "control character" in result.err


def test_the_client_checks_every_id_and_name(client: TaskHubClient) -> None:
    calls = [
        lambda: client.start_instance("hello", instance_id="bad\nid"),
        lambda: client.start_instance("bad\tname"),
        lambda: client.start_instances([StartRequest("hello", None, "ok"), ("hello", None, "a?b")]),
        lambda: client.raise_event("x\n", "go"),
        lambda: client.raise_event("x", "g\no"),
        lambda: client.terminate("x\n"),
        lambda: client.suspend("x\n"),
        lambda: client.resume("x\n"),
        lambda: client.purge(["ok", "x\n"]),
        lambda: client.wait_for_completion("x\n", timeout=0),
        lambda: client.get_history("x\n"),
    ]
    for call in calls:
        with pytest.raises(InvalidName):
            call()
    assert client.list_instances().instances == []  # the batch with one bad id stored nothing


def test_app_registration_refuses_bad_names() -> None:
    app = dtctl.App()

    def work(ctx: object, _: object) -> None:
        return None

    with pytest.raises(InvalidName, match="orchestrator name"):
        app.add_orchestrator(work, name="bad\nname")
    with pytest.raises(InvalidName, match="activity name"):
        app.add_activity(work, name="x" * 300)
    assert app.orchestrators == {} and app.activities == {}


def test_a_generated_child_id_stays_addressable() -> None:
    parent = "p" * names.MAX_INSTANCE_ID
    assert names.instance_ref(f"{parent}:0001") == f"{parent}:0001"
    assert names.instance_ref("legacy/id#1") == "legacy/id#1"


def test_the_hub_busy_hint_names_no_option_that_does_not_exist() -> None:
    from dtctl.cli.main import command

    hint = HubBusy("locked").hint or ""
    options = {opt for param in _all_params(command()) for opt in param.opts}
    for word in hint.split():
        if word.strip("`(),;").startswith("--"):
            assert word.strip("`(),;") in options, word
    assert "busy-timeout" not in hint and "dtctl doctor" in hint


def _all_params(command: object) -> list[object]:
    found = list(getattr(command, "params", []))
    for sub in getattr(command, "commands", {}).values():
        found += _all_params(sub)
    return found


def test_an_app_with_a_syntax_error_names_file_and_line(cli: Cli, tmp_path: Path) -> None:
    app = tmp_path / "broken_app.py"
    app.write_text("import dtctl\napp = dtctl.App()\n\ndef f(:\n    pass\n")
    result = cli("worker", f"{app}:app", "--burst")
    assert result.code == ExitCode.USAGE
    [line] = result.err.strip().splitlines()
    assert f"{app}:4: SyntaxError: invalid syntax" in line, line
    assert "frozen" not in result.err and "Traceback" not in result.err
    verbose = cli("-v", "worker", f"{app}:app", "--burst")
    assert "Traceback" in verbose.err and "def f(:" in verbose.err


def test_an_app_failing_at_import_names_its_own_line(cli: Cli, tmp_path: Path) -> None:
    app = tmp_path / "raising_app.py"
    app.write_text("import dtctl\n\nvalue = 1 / 0\n")
    result = cli("worker", f"{app}:app", "--burst")
    assert result.code == ExitCode.USAGE
    assert f"ZeroDivisionError: division by zero ({app}:3)" in result.err
    assert "frozen" not in result.err
