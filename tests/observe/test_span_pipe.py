"""The exporter child process of a worker (dtctl.observe.spanpipe): killing it does not stop or block the
worker, a SIGKILLed worker's child exports what it was sent and exits, and ``inline`` keeps export in
the worker."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from dtctl.client import TaskHubClient
from dtctl.core.history import COMPLETED
from tests.helpers import WorkerProcess, wait_until
from tests.observe.spanfile import FILE_ENV, read_spans
from tests.observe.support import APP, new_hub, wait_terminal


@pytest.fixture
def span_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "spans.jsonl"
    monkeypatch.setenv("DTCTL_OTEL_SPAN_EXPORTER", "tests.observe.spanfile:processor")
    monkeypatch.setenv(FILE_ENV, str(path))
    return path


def _children(pid: int) -> list[int]:
    """Live (not zombie) processes whose parent is ``pid``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        state, parent = stat.rsplit(")", 1)[1].split()[:2]
        if int(parent) == pid and state != "Z":
            found.append(int(entry))
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _exporter_of(worker: WorkerProcess) -> int:
    children = wait_until(lambda: _children(worker.pid), what="the exporter process")
    assert len(children) == 1
    assert b"dtctl.observe.spanpipe" in Path(f"/proc/{children[0]}/cmdline").read_bytes()
    return children[0]


def _run_hellos(hub: Path, count: int) -> list[str]:
    with TaskHubClient(str(hub)) as client:
        ids = [client.start_instance("hello") for _ in range(count)]
    assert set(wait_terminal(hub, ids).values()) == {COMPLETED}
    return ids


def test_a_dead_exporter_process_neither_stops_nor_blocks_the_worker(tmp_path: Path, span_file: Path) -> None:
    hub = new_hub(tmp_path)
    worker = WorkerProcess(hub, f"{APP}:app", tmp_path / "logs")
    try:
        before = _run_hellos(hub, 2)
        wait_until(lambda: len(read_spans(span_file)) >= 2 * 6, what="the first spans")  # 1 + 3 + 2 each
        os.kill(_exporter_of(worker), signal.SIGKILL)
        after = _run_hellos(hub, 5)  # spans dropped now; the work goes on
        assert worker.alive()
    finally:
        worker.signal(signal.SIGTERM)
        code = worker.wait()
    assert code == 0, worker.log()
    assert "is gone" in worker.log() and "spans were dropped" in worker.log()
    exported = {s["attributes"]["dtctl.instance_id"] for s in read_spans(span_file)}
    assert set(before) <= exported and exported.isdisjoint(after)


def test_a_sigkilled_worker_s_exporter_exports_what_it_was_sent_and_exits(
    tmp_path: Path, span_file: Path
) -> None:
    hub = new_hub(tmp_path)
    worker = WorkerProcess(hub, f"{APP}:app", tmp_path / "logs")
    exporter = _exporter_of(worker)
    (done,) = _run_hellos(hub, 1)
    worker.kill()
    wait_until(lambda: not _alive(exporter), what="the exporter process to exit")
    spans = [s for s in read_spans(span_file) if s["attributes"]["dtctl.instance_id"] == done]
    assert sum(s["name"] == "orchestration hello" for s in spans) == 1  # written at its commit
    assert sum(s["name"] == "activity greet" for s in spans) == 3
    assert {s["pid"] for s in spans} == {worker.pid}  # the worker's process.pid, not the exporter's


def test_inline_export_starts_no_process(
    tmp_path: Path, span_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DTCTL_OTEL_EXPORT", "inline")
    hub = new_hub(tmp_path)
    worker = WorkerProcess(hub, f"{APP}:app", tmp_path / "logs")
    try:
        _run_hellos(hub, 1)
        assert _children(worker.pid) == []
    finally:
        worker.signal(signal.SIGTERM)
        assert worker.wait() == 0
    assert sum(s["name"] == "activity greet" for s in read_spans(span_file)) == 3
