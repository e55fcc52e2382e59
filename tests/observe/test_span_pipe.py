"""The exporter child process of a worker (dtctl.observe.spanpipe): killing it does not stop or block the
worker, a SIGKILLed worker's child exports what it was sent and exits, and ``inline`` keeps export in
the worker."""

from __future__ import annotations

import marshal
import os
import signal
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, TracerProvider
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from dtctl.client import TaskHubClient
from dtctl.core.history import COMPLETED
from dtctl.hub import open_hub
from dtctl.observe.otlp import encode_request
from dtctl.observe.spanpipe import Rebuilt, record, record_of
from tests.helpers import WorkerProcess, wait_until
from tests.observe.spanfile import FILE_ENV, read_spans
from tests.observe.support import APP, new_hub, wait_terminal
from tests.observe.test_otlp_encoding import Kept, dtctl_spans, sdk_tracer_spans


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

    def of_done() -> list[dict[str, Any]]:
        return [s for s in read_spans(span_file) if s["attributes"]["dtctl.instance_id"] == done]

    wait_until(lambda: any(s["name"] == "orchestration hello" for s in of_done()), what="the last span")
    worker.kill()
    wait_until(lambda: not _alive(exporter), what="the exporter process to exit")
    spans = of_done()
    assert len(spans) == 1 + 3 + _episodes(hub, done)  # the orchestration, its activities and episodes
    assert {s["pid"] for s in spans} == {worker.pid}  # the worker's process.pid, not the exporter's


def _episodes(hub_path: Path, instance_id: str) -> int:
    hub = open_hub(str(hub_path))
    try:
        return sum(1 for r in hub.get_history(instance_id) if r.event.kind == "orchestrator_started")
    finally:
        hub.close()


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


def test_a_record_rebuilds_the_span_it_was_made_from() -> None:
    """Both ways into the pipe (dtctl's spans as records, any other span through record_of) come out of
    the exporter process as the same span: the same OTLP bytes."""
    kept = Kept()
    provider = TracerProvider(resource=Resource.create({"service.name": "orders"}))
    provider.add_span_processor(kept)
    dtctl_spans(kept, provider)
    sdk_tracer_spans(provider)
    rebuilt = Rebuilt(provider.resource)
    for span in kept.spans:
        again = rebuilt.span(marshal.loads(marshal.dumps(record_of(span))))
        assert encode_request([again]) == encode_request([span]), span.name
    sampled = TraceFlags(TraceFlags.SAMPLED)
    caller = SpanContext(0xABC, 0xDEF, is_remote=True, trace_flags=sampled)
    own = SpanContext(0xABC, 0x123, is_remote=False, trace_flags=sampled)
    failed = Status(StatusCode.ERROR, "boom")
    events = [Event("event_raised", {"dtctl.event.name": "go"}, 15)]
    attributes = {"k": "v", "n": 2}
    scope = InstrumentationScope("dtctl")
    span = ReadableSpan(
        "activity a",
        own,
        caller,
        provider.resource,
        attributes,
        events,
        (),
        SpanKind.CONSUMER,
        None,
        failed,
        10,
        20,
        scope,
    )
    direct = record(
        "activity a",
        own,
        caller,
        attributes,
        (10, 20),
        SpanKind.CONSUMER,
        failed,
        events,
        (scope.name, scope.version, scope.schema_url, None),
    )
    assert direct == record_of(span)
