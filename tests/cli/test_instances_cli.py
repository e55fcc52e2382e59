"""start-instance, raise-event, terminate, suspend, resume, status, wait, list: JSON shapes and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dtctl.client import TaskHubClient
from tests.cli.conftest import CLI_APP, Cli, LiveWorker, burst
from tests.helpers import wait_until

INSTANCE_KEYS = {
    "instance_id",
    "execution_id",
    "name",
    "status",
    "created_at",
    "updated_at",
    "completed_at",
    "scheduled_start",
    "input",
    "output",
    "custom_status",
    "failure",
    "parent_instance_id",
    "lease_owner",
    "lease_expires",
    "history_length",
    "previous_execution_id",
    "version",
    "tags",
}
WAITING_KEYS = {
    "start_at",
    "episode",
    "activities",
    "timers",
    "sub_orchestrations",
    "entity_requests",
    "new_events",
    "events_received",
    "events_buffered",
    "unclaimed",
}


# --- start-instance -----------------------------------------------------------------------------------


def test_start_instance_prints_the_id_and_its_json_shape(cli: Cli, client: TaskHubClient) -> None:
    plain = cli("start-instance", "ok", "--input", '{"n": 1}', "--id", "a-1")
    assert (plain.code, plain.out) == (0, "a-1\n")
    assert json.loads(client.get_instance_or_raise("a-1").input or "null") == {"n": 1}
    shaped = cli("start-instance", "ok", "--id", "a-2", "--json")
    assert shaped.json() == {"instance_id": "a-2", "created": True}
    skipped = cli("start-instance", "ok", "--id", "a-2", "--if-exists", "skip", "--json")
    assert skipped.json() == {"instance_id": "a-2", "created": False}


def test_start_instance_reads_input_from_a_file_and_from_stdin(
    cli: Cli, client: TaskHubClient, tmp_path: Path
) -> None:
    payload = tmp_path / "input.json"
    payload.write_text('{"from": "file"}')
    assert cli("start-instance", "ok", "--id", "f", "--input", f"@{payload}").code == 0
    assert cli("start-instance", "ok", "--id", "s", "--input", "-", input='["stdin"]').code == 0
    assert client.get_instance_or_raise("f").input == '{"from":"file"}'
    assert client.get_instance_or_raise("s").input == '["stdin"]'


def test_malformed_input_says_where_it_is_wrong_and_exits_2(cli: Cli, tmp_path: Path) -> None:
    bad = cli("start-instance", "ok", "--input", '{"a": 1,\n "b": }')
    assert bad.code == 2
    assert "not valid JSON" in bad.err and "line 2 column 7" in bad.err
    assert bad.out == "" and "Traceback" not in bad.err
    missing = cli("start-instance", "ok", "--input", f"@{tmp_path / 'nope.json'}")
    assert missing.code == 2 and "cannot read --input file" in missing.err
    assert cli("start-instance", "ok", "--start-at", "yesterday-ish").code == 2
    assert cli("start-instance", "ok", "--if-exists", "maybe").code == 2


def test_start_at_schedules_for_later(cli: Cli) -> None:
    data = cli("start-instance", "ok", "--id", "later", "--start-at", "1h", "--json").json()
    status = cli("status", data["instance_id"], "--json").json()
    assert status["status"] == "PENDING" and status["scheduled_start"] is not None
    assert status["waiting_for"]["start_at"] == status["scheduled_start"]


def test_an_existing_id_is_a_conflict(cli: Cli) -> None:
    assert cli("start-instance", "ok", "--id", "dup").code == 0
    again = cli("start-instance", "ok", "--id", "dup")
    assert again.code == 4 and again.err.startswith("error: ")


def test_an_unknown_orchestrator_warns_and_strict_refuses(cli: Cli, client: TaskHubClient) -> None:
    warned = cli("start-instance", "no_such_orchestrator", "--id", "w-1")
    assert warned.code == 0 and warned.out == "w-1\n"
    assert "warning: no live worker has registered orchestrator 'no_such_orchestrator'" in warned.err
    strict = cli("start-instance", "no_such_orchestrator", "--id", "w-2", "--strict", "--json")
    assert strict.code == 4 and strict.out == ""
    assert "nothing was scheduled" in strict.err
    assert client.get_instance("w-2") is None


def test_a_name_a_live_worker_registered_starts_quietly(
    cli: Cli, live_worker: LiveWorker, client: TaskHubClient
) -> None:
    started = cli("start-instance", "ok", "--id", "q-1", "--strict", "--input", "7")
    assert (started.code, started.out, started.err) == (0, "q-1\n", "")
    other = cli("start-instance", "process_order", "--id", "q-2")  # registered, but not by this worker
    assert other.code == 0 and "its live workers do not know it" in other.err


def test_wait_prints_the_output_and_exit_codes_follow_the_outcome(cli: Cli, live_worker: LiveWorker) -> None:
    done = cli("start-instance", "ok", "--input", '{"n": 2}', "--wait", "--timeout", "30")
    assert (done.code, json.loads(done.out)) == (0, {"n": 2})
    shaped = cli("start-instance", "ok", "--input", "3", "--wait", "--timeout", "30", "--json").json()
    assert set(shaped) == INSTANCE_KEYS and shaped["status"] == "COMPLETED" and shaped["output"] == 3
    failed = cli("start-instance", "fails", "--input", '"out of stock"', "--wait", "--timeout", "30")
    assert failed.code == 5
    assert "ended FAILED: " in failed.err and "activity 'explode' failed: out of stock" in failed.err
    timed_out = cli("start-instance", "gate", "--id", "g-1", "--wait", "--timeout", "0.2")
    assert timed_out.code == 6 and "still" in timed_out.err
    assert cli("terminate", "g-1").code == 0
    terminated = cli("wait", "g-1", "--timeout", "30", "--json")
    assert terminated.code == 5 and json.loads(terminated.out)["status"] == "TERMINATED"


# --- raise-event, terminate, suspend, resume -------------------------------------------------------------


def test_raise_event_shape_and_failures(cli: Cli, hub_file: Path) -> None:
    cli("start-instance", "gate", "--id", "e-1")
    raised = cli("raise-event", "e-1", "go", "--data", '{"ok": true}', "--json")
    assert raised.json() == {"instance_id": "e-1", "event": "go", "raised": True}
    plain = cli("raise-event", "e-1", "other")
    assert plain.code == 0 and plain.out == "" and "raised 'other' on e-1" in plain.err
    assert cli("raise-event", "nope", "go").code == 3
    assert cli("raise-event", "e-1", "go", "--data", "{bad").code == 2
    burst(hub_file, CLI_APP)
    assert cli("status", "e-1", "--json").json()["status"] == "COMPLETED"
    assert cli("raise-event", "e-1", "go").code == 4
    assert cli("raise-event", "e-1", "go", "--force").code == 0


def test_terminate_shape_and_idempotence(cli: Cli, hub_file: Path) -> None:
    cli("start-instance", "gate", "--id", "t-1")
    first = cli("terminate", "t-1", "--reason", "enough", "--json").json()
    assert first == {"instance_id": "t-1", "terminated": True, "status": "TERMINATED"}
    again = cli("terminate", "t-1", "--json").json()
    assert again == {"instance_id": "t-1", "terminated": False, "status": "TERMINATED"}
    assert cli("terminate", "nope").code == 3


def test_suspend_and_resume_shapes_and_failures(cli: Cli, hub_file: Path) -> None:
    cli("start-instance", "gate", "--id", "s-1")
    burst(hub_file, CLI_APP)
    assert cli("suspend", "s-1", "--json").json() == {"instance_id": "s-1", "suspended": True}
    burst(hub_file, CLI_APP)
    status = cli("status", "s-1")
    assert "SUSPENDED" in status.out and "dtctl resume s-1" in status.out
    assert cli("resume", "s-1", "--reason", "go on", "--json").json() == {
        "instance_id": "s-1",
        "resumed": True,
    }
    assert cli("suspend", "nope").code == 3
    assert cli("resume", "nope").code == 3
    cli("terminate", "s-1")
    burst(hub_file, CLI_APP)
    assert cli("suspend", "s-1").code == 4


# --- status, wait, list --------------------------------------------------------------------------------


def test_status_shape_of_a_finished_instance(done_cli: Cli) -> None:
    data = done_cli("status", "fails-1", "--json").json()
    assert set(data) == INSTANCE_KEYS | {"waiting_for"}
    assert set(data["waiting_for"]) == WAITING_KEYS
    assert data["status"] == "FAILED"
    assert data["failure"]["error_type"].endswith("TaskFailedError") or data["failure"]["message"]
    assert data["waiting_for"]["activities"] == [] and data["waiting_for"]["timers"] == []
    assert data["created_at"].endswith("Z")
    text = done_cli("status", "fails-1")
    assert "failure" in text.out and "no stock" in text.out and "waiting for" not in text.out
    assert done_cli("status", "nope").code == 3


def test_status_truncates_payloads_unless_full(cli: Cli) -> None:
    long_input = json.dumps("x" * 500)
    cli("start-instance", "ok", "--id", "long", "--input", long_input)
    assert "x" * 500 not in cli("status", "long").out
    assert "x" * 500 in cli("status", "long", "--full").out
    assert cli("status", "long", "--json").json()["input"] == "x" * 500


def test_status_says_what_a_stuck_instance_waits_for(
    cli: Cli, hub_file: Path, client: TaskHubClient, tmp_path: Path
) -> None:
    # A gated activity running on a live worker, a timer an hour away, a running sub-orchestration.
    gate_file = tmp_path / "gate"
    live = LiveWorker(hub_file, tmp_path / "logs", app="tests/apps/gated.py:app")
    try:
        cli("start-instance", "gated_workflow", "--id", "busy", "--input", json.dumps(str(gate_file)))
        running = wait_until(
            lambda: [a for a in client.waiting_for("busy").activities if a.state == "running"],
            what="the gated activity to run",
        )
        data = cli("status", "busy", "--json").json()["waiting_for"]
        (activity,) = data["activities"]
        assert activity["name"] == "wait_for_gate" and activity["state"] == "running"
        assert activity["worker"] == running[0].worker and activity["attempts"] == 1
        unclaimed = {k: data["unclaimed"][k] for k in ("orchestrations", "activities", "live_workers")}
        assert unclaimed == {"orchestrations": [], "activities": [], "live_workers": 1}
        assert data["unclaimed"]["version_refused"] is False
        text = cli("status", "busy").out
        assert "activity wait_for_gate (task 0): running on worker" in text
        gate_file.write_text("open")
        assert cli("wait", "busy", "--timeout", "30").code == 0
    finally:
        live.stop()
    cli("start-instance", "sleeper", "--id", "nap", "--input", "3600")
    cli("start-instance", "parent", "--id", "dad")
    burst(hub_file, CLI_APP)
    (timer,) = cli("status", "nap", "--json").json()["waiting_for"]["timers"]
    assert timer["state"] == "waiting" and timer["fire_at"].endswith("Z")
    assert "timer (task 0): fires" in cli("status", "nap").out
    (child,) = cli("status", "dad", "--json").json()["waiting_for"]["sub_orchestrations"]
    assert child == {
        "task_id": 0,
        "name": "gate",
        "instance_id": "dad:child",
        "status": "RUNNING",
        "state": "running",
        "created_at": child["created_at"],
    }
    # No worker is running now: every live instance says so.
    assert cli("status", "nap", "--json").json()["waiting_for"]["unclaimed"]["live_workers"] == 0
    assert "no live worker on this hub" in cli("status", "dad").out
    cli("raise-event", "dad:child", "go", "--data", "1")
    buffered = cli("status", "dad:child", "--json").json()["waiting_for"]
    assert buffered["events_buffered"] == ["go"]
    assert [e["kind"] for e in buffered["new_events"]] == ["event_raised"]


def test_wait_exit_codes(done_cli: Cli) -> None:
    ok = done_cli("wait", "ok-1")
    assert (ok.code, json.loads(ok.out)) == (0, {"n": 1})
    assert done_cli("wait", "ok-1", "--json").json()["status"] == "COMPLETED"
    assert done_cli("wait", "fails-1").code == 5
    terminated = done_cli("wait", "terminated-1")
    assert terminated.code == 5 and "TERMINATED" in terminated.err and "stopped by the test" in terminated.err
    assert done_cli("wait", "nope").code == 3


def test_list_shape_filters_and_paging(done_cli: Cli) -> None:
    everything = done_cli("list", "--json").json()
    assert set(everything) == {"instances", "next_cursor"} and everything["next_cursor"] is None
    ids = [i["instance_id"] for i in everything["instances"]]
    assert {"order-1", "ok-1", "fails-1", "terminated-1"} <= set(ids)
    created = [i["created_at"] for i in everything["instances"]]
    assert created == sorted(created, reverse=True)  # newest first
    assert all(set(i) == INSTANCE_KEYS for i in everything["instances"])
    paged: list[str] = []
    cursor = None
    while True:
        args = ["list", "--limit", "2", "--json"] + (["--cursor", cursor] if cursor else [])
        page = done_cli(*args).json()
        paged += [i["instance_id"] for i in page["instances"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert paged == ids
    failed = done_cli("list", "--status", "failed", "--status", "TERMINATED", "--json").json()
    assert {i["instance_id"] for i in failed["instances"]} == {"fails-1", "terminated-1"}
    assert [i["instance_id"] for i in done_cli("list", "--name", "ok", "--json").json()["instances"]] == [
        "ok-1"
    ]
    prefixed = done_cli("list", "--prefix", "order-1", "--json").json()["instances"]
    assert {i["instance_id"] for i in prefixed} == {"order-1", "order-1:0000", "order-1:0001"}
    assert done_cli("list", "--created-after", "1h", "--json").json()["instances"]
    assert done_cli("list", "--created-before", "1h", "--json").json()["instances"] == []
    more = done_cli("list", "--limit", "1")
    assert "more instances: --cursor" in more.err and more.out.count("\n") == 2


@pytest.mark.parametrize(
    "args",
    [
        ("list", "--status", "DONE"),
        ("list", "--created-after", "last tuesday"),
        ("list", "--cursor", "not-a-cursor"),
        ("list", "--limit", "0"),
        ("list", "-o", "yaml"),
    ],
)
def test_list_usage_errors(done_cli: Cli, args: tuple[str, ...]) -> None:
    failed = done_cli(*args)
    assert failed.code == 2 and failed.out == "" and "Traceback" not in failed.err
