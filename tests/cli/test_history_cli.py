"""history show: the table, --json, --payloads, --execution, --timeline and --follow (with real workers)."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

from dtctl.client import TaskHubClient
from tests.cli.conftest import CLI_APP, Cli, LiveWorker, burst
from tests.helpers import REPO, child_env, wait_until

SPAN_KEYS = {
    "kind",
    "name",
    "task_id",
    "target",
    "fire_at",
    "start",
    "end",
    "duration_ms",
    "outcome",
    "failure",
}


def test_history_json_is_the_events_in_order(done_cli: Cli, finished_hub: Path) -> None:
    events = done_cli("history", "show", "order-1", "--json").json()
    with TaskHubClient(finished_hub) as client:
        stored = client.get_history("order-1")
    assert [e["sequence"] for e in events] == [r.sequence for r in stored] == list(range(len(stored)))
    assert all({"sequence", "execution_id", "timestamp", "kind"} <= set(e) for e in events)
    assert events[-1]["kind"] == "execution_completed" and events[-1]["status"] == "COMPLETED"
    scheduled = [e for e in events if e["kind"] == "sub_orchestration_created"]
    assert [(e["task_id"], e["name"], e["instance_id"]) for e in scheduled] == [
        (0, "reserve_line", "order-1:0000"),
        (1, "reserve_line", "order-1:0001"),
    ]
    assert scheduled[0]["input"] == {"sku": "book", "qty": 2}  # payloads are JSON values, not text
    assert events[0]["timestamp"].endswith("Z")


def test_history_table_names_completions_and_shows_failures(done_cli: Cli) -> None:
    table = done_cli("history", "show", "order-1")
    assert table.code == 0
    header, *rows = table.out.splitlines()
    assert header.split() == ["SEQ", "TIME", "KIND", "NAME", "TASK", "DETAIL"]
    completed = [r for r in rows if "task_completed" in r]
    assert any("charge_customer" in r and '"charged ada 37.00"' in r for r in completed)
    assert "UTC" in rows[0] or "+" in rows[0] or "-" in rows[0]  # local time with its zone
    failed = done_cli("history", "show", "fails-1")
    assert "RuntimeError: no stock" in failed.out
    assert "Traceback" not in failed.out
    assert "Traceback" in done_cli("history", "show", "fails-1", "--payloads").out  # the stack trace


def test_history_truncates_payloads_unless_asked(cli: Cli, hub_file: Path) -> None:
    cli("start-instance", "ok", "--id", "big", "--input", json.dumps("y" * 300))
    burst(hub_file, CLI_APP)
    assert "y" * 300 not in cli("history", "show", "big").out
    assert "y" * 300 in cli("history", "show", "big", "--payloads").out


def test_history_failures(done_cli: Cli) -> None:
    assert done_cli("history", "show", "nope").code == 3
    unknown = done_cli("history", "show", "order-1", "--execution", "no-such-execution")
    assert unknown.code == 3 and "no stored execution" in unknown.err
    never = done_cli("history", "show", "order-1", "--execution", "previous")
    assert never.code == 3 and "has no earlier execution stored" in never.err
    assert done_cli("status", "order-1", "--json").json()["previous_execution_id"] is None
    assert "previous execution" not in done_cli("status", "order-1").out
    assert done_cli("history", "show", "order-1", "--follow", "--timeline").code == 2


def test_an_earlier_execution_after_continue_as_new(cli: Cli, hub_file: Path, tmp_path: Path) -> None:
    monitor = {"checks": 0, "max_checks": 2, "interval_seconds": 0.01}
    cli("start-instance", "monitor", "--id", "mon", "--input", json.dumps(monitor))
    worker = LiveWorker(hub_file, tmp_path / "logs", app="samples/monitor.py:app")
    try:
        assert cli("wait", "mon", "--timeout", "30").code == 0
    finally:
        worker.stop()
    current = cli("history", "show", "mon", "--json").json()
    assert {e["execution_id"] for e in current} == {cli("status", "mon", "--json").json()["execution_id"]}
    with sqlite3.connect(hub_file) as db:
        (previous,) = db.execute(
            "SELECT previous_execution_id FROM instances WHERE instance_id = 'mon'"
        ).fetchone()
    earlier = cli("history", "show", "mon", "--execution", previous, "--json").json()
    assert {e["execution_id"] for e in earlier} == {previous}
    assert earlier[-1]["kind"] == "continued_as_new"
    assert earlier[-1]["new_execution_id"] == current[0]["execution_id"]
    assert "continued_as_new" in cli("history", "show", "mon", "--execution", previous).out
    timeline = cli("history", "show", "mon", "--execution", previous, "--timeline", "--json").json()
    assert timeline["status"] == "CONTINUED_AS_NEW" and timeline["execution_id"] == previous
    status = cli("status", "mon", "--json").json()
    assert status["previous_execution_id"] == previous
    assert any(
        line.split()[-1] == previous
        for line in cli("status", "mon").out.splitlines()
        if "previous execution" in line
    )
    by_name = cli("history", "show", "mon", "--execution", "previous", "--json").json()
    assert by_name == earlier
    assert by_name[-1]["kind"] == "continued_as_new"


def test_timeline_draws_a_bar_per_task(done_cli: Cli) -> None:
    data = done_cli("history", "show", "order-1", "--timeline", "--json").json()
    assert set(data) == {
        "instance_id",
        "execution_id",
        "name",
        "status",
        "start",
        "end",
        "duration_ms",
        "spans",
    }
    assert all(set(s) == SPAN_KEYS for s in data["spans"])
    kinds = [(s["kind"], s["name"], s["task_id"]) for s in data["spans"]]
    assert kinds[0] == ("orchestration", "process_order", None)
    assert ("sub_orchestration", "reserve_line", 0) in kinds and ("activity", "ship", 3) in kinds
    assert all(s["duration_ms"] >= 0 for s in data["spans"])
    text = done_cli("history", "show", "order-1", "--timeline").out
    assert "process_order" in text and "charge_customer" in text
    ship = next(line for line in text.splitlines() if " ship " in line)
    assert "#" in ship or "█" in ship  # ASCII bars when the output encoding is not UTF-8
    failed = done_cli("history", "show", "fails-1", "--timeline")
    assert "failed: RuntimeError: no stock" in failed.out
    failed_span = next(
        s
        for s in done_cli("history", "show", "fails-1", "--timeline", "--json").json()["spans"]
        if s["kind"] == "activity"
    )
    assert failed_span["outcome"] == "failed"
    assert failed_span["failure"] == {"error_type": "builtins.RuntimeError", "message": "no stock"}


class Follower:
    """``dtctl history show ID --follow`` in its own process, its stdout collected line by line."""

    def __init__(self, hub_file: Path, instance_id: str, *extra: str) -> None:
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dtctl",
                "--hub",
                str(hub_file),
                "history",
                "show",
                instance_id,
                "--follow",
                *extra,
            ],
            cwd=REPO,
            env=child_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    def finish(self, timeout: float = 30) -> tuple[int, str]:
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout)
        assert self.process.stderr is not None
        return code, self.process.stderr.read()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def test_follow_streams_events_as_a_real_worker_commits_them(hub_file: Path, tmp_path: Path) -> None:
    with TaskHubClient(hub_file) as client:
        client.start_instance("gate", instance_id="f-1")
        follower = Follower(hub_file, "f-1", "--json")
        worker = LiveWorker(hub_file, tmp_path / "logs")
        try:
            # The first episode is streamed while the instance still waits for its event ...
            wait_until(
                lambda: any('"execution_started"' in line for line in follower.lines),
                what="the first episode to be streamed",
            )
            assert follower.process.poll() is None
            client.raise_event("f-1", "go", {"done": True})
            # ... and the rest once the worker commits it; the follower stops at the terminal status.
            code, err = follower.finish()
        finally:
            follower.kill()
            worker.stop()
        events = [json.loads(line) for line in follower.lines]
        stored = client.get_history("f-1")
    assert code == 0, err
    assert [e["sequence"] for e in events] == [r.sequence for r in stored]
    assert [e["kind"] for e in events][-2:] == ["event_raised", "execution_completed"]
    assert events[-2]["input"] == {"done": True}


def test_follow_stops_on_ctrl_c_with_exit_0(hub_file: Path) -> None:
    with TaskHubClient(hub_file) as client:
        client.start_instance("gate", instance_id="f-2")
    follower = Follower(hub_file, "f-2")
    try:
        wait_until(lambda: follower.lines, what="the follow header")
        assert follower.lines[0].split()[:3] == ["SEQ", "TIME", "KIND"]
        follower.process.send_signal(signal.SIGINT)
        code, err = follower.finish()
    finally:
        follower.kill()
    assert code == 0, err
    assert "Traceback" not in err


def test_follow_of_a_finished_instance_prints_its_history_and_exits(done_cli: Cli) -> None:
    streamed = done_cli("history", "show", "order-1", "--follow", "--json")
    assert streamed.code == 0
    events = [json.loads(line) for line in streamed.out.splitlines()]
    assert [e["kind"] for e in events] == [
        e["kind"] for e in done_cli("history", "show", "order-1", "--json").json()
    ]
    text = done_cli("history", "show", "order-1", "--follow")
    assert text.code == 0 and "execution_completed" in text.out
