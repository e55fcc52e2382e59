"""OpenTelemetry spans from real worker processes: one trace per workflow, across processes and a
SIGKILL takeover, one span per activity execution, no span twice when history is replayed."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider

from dtctl.client import TaskHubClient
from dtctl.core.history import COMPLETED, FAILED
from dtctl.hub import open_hub
from dtctl.observe.tracecontext import orchestration_span_id
from tests.helpers import REPO, WorkerProcess, child_env, wait_until
from tests.observe.spanfile import FILE_ENV, read_spans
from tests.observe.support import APP, Dtctl, new_hub, wait_terminal

Span = dict[str, Any]


@pytest.fixture
def span_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Worker processes started from here export their spans to this file (child_env copies os.environ)."""
    path = tmp_path / "spans.jsonl"
    monkeypatch.setenv("DTCTL_OTEL_SPAN_EXPORTER", "tests.observe.spanfile:processor")
    monkeypatch.setenv(FILE_ENV, str(path))
    monkeypatch.setenv("OTEL_SERVICE_NAME", "obs-test-worker")
    return path


@pytest.fixture
def caller() -> Iterator[Any]:
    """The test's own span: the caller of start_instance (a local provider, no global state)."""
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("caller") as span:
        yield span


def _by_instance(spans: list[Span], name_prefix: str) -> dict[str, list[Span]]:
    grouped: dict[str, list[Span]] = {}
    for span in spans:
        if span["name"].startswith(name_prefix):
            grouped.setdefault(span["attributes"]["dtctl.instance_id"], []).append(span)
    return grouped


def _episodes_in_history(hub_path: Path, instance_id: str) -> int:
    hub = open_hub(str(hub_path))
    try:
        return sum(1 for r in hub.get_history(instance_id) if r.event.kind == "orchestrator_started")
    finally:
        hub.close()


def _check_tree(spans: list[Span], hub_path: Path, caller_context: Any) -> dict[str, Span]:
    """One trace; one orchestration span per instance; everything else parented to it; one episode span
    per episode in history. Returns the orchestration spans by instance id."""
    trace_id = f"{caller_context.trace_id:032x}"
    assert {s["trace_id"] for s in spans} == {trace_id}
    orchestrations = {i: s for i, (s, *more) in _by_instance(spans, "orchestration ").items() if not more}
    assert len(orchestrations) == len(_by_instance(spans, "orchestration ")), "an orchestration span twice"
    for instance_id, orchestration in orchestrations.items():
        execution = orchestration["attributes"]["dtctl.execution_id"]
        assert orchestration["span_id"] == f"{orchestration_span_id(instance_id, execution):016x}"
        assert orchestration["start"] <= orchestration["end"]
    for span in spans:
        if not span["name"].startswith("orchestration "):
            parent = orchestrations[span["attributes"]["dtctl.instance_id"]]
            assert span["parent_span_id"] == parent["span_id"], span
    for instance_id, episodes in _by_instance(spans, "episode ").items():
        assert len(episodes) == _episodes_in_history(hub_path, instance_id), instance_id
    return orchestrations


def test_one_trace_across_two_worker_processes(tmp_path: Path, span_file: Path, caller: Any) -> None:
    hub = new_hub(tmp_path)
    with TaskHubClient(str(hub)) as client:
        hellos = [client.start_instance("hello") for _ in range(3)]
        flaky = client.start_instance("flaky_once")
        family = client.start_instance("family")
    # Orchestrations in one process, activities in another: every parent link crosses processes.
    orchestrator = Dtctl(hub, tmp_path / "o.log", "worker", f"{APP}:orchestrations_only")
    runner = Dtctl(hub, tmp_path / "a.log", "worker", f"{APP}:activities_only")
    try:
        states = wait_terminal(hub, [*hellos, flaky, family])
    finally:
        assert orchestrator.stop() == 0 and runner.stop() == 0
    assert set(states.values()) == {COMPLETED}
    spans = read_spans(span_file)
    context = caller.get_span_context()
    orchestrations = _check_tree(spans, hub, context)
    child = next(i for i in orchestrations if i not in {*hellos, flaky, family})
    for instance_id in (*hellos, flaky, family):  # the caller's span is the parent of each workflow
        assert orchestrations[instance_id]["parent_span_id"] == f"{context.span_id:016x}"
    assert orchestrations[child]["parent_span_id"] == orchestrations[family]["span_id"]
    assert orchestrations[child]["attributes"]["dtctl.name"] == "hello"
    activities = [s for s in spans if s["name"].startswith("activity ")]
    executions = Counter(
        (s["attributes"]["dtctl.instance_id"], s["attributes"]["dtctl.task_id"]) for s in activities
    )
    assert set(executions.values()) == {1}, "one span per activity execution"
    assert Counter(s["name"] for s in activities) == {"activity greet": 3 * 4, "activity flaky": 2}
    flaky_spans = sorted(_by_instance(activities, "activity flaky")[flaky], key=lambda s: s["start"])
    assert [s["status"] for s in flaky_spans] == ["ERROR", "UNSET"]  # the failure, then its retry
    assert {s["attributes"]["dtctl.status"] for s in flaky_spans} == {"failed", "completed"}
    timers = _by_instance(spans, "timer")
    assert len(timers[family]) == 1 and len(timers[flaky]) == 1  # family's timer; the retry's delay
    orchestration_pids = {s["pid"] for s in spans if not s["name"].startswith("activity ")}
    assert len(orchestration_pids) == 1 and orchestration_pids.isdisjoint({s["pid"] for s in activities})
    assert {s["service"] for s in spans} == {"obs-test-worker"}
    for span in activities + list(orchestrations.values()):
        attributes = span["attributes"]
        assert {"dtctl.instance_id", "dtctl.name", "dtctl.execution_id", "dtctl.status"} <= set(attributes)


def _leased_by(hub_path: Path, instance_id: str) -> str | None:
    hub = open_hub(str(hub_path))
    try:
        return next((i.lease_owner for i in hub.pending_activities(instance_id) if i.lease_owner), None)
    finally:
        hub.close()


def test_a_sigkill_takeover_keeps_the_trace_whole(tmp_path: Path, span_file: Path, caller: Any) -> None:
    hub = new_hub(tmp_path)
    gate = tmp_path / "gate"
    with TaskHubClient(str(hub)) as client:
        client.start_instance("gated", input=str(gate), instance_id="held")
    app = f"{APP}:app"
    first = WorkerProcess(hub, app, tmp_path / "logs", lease_seconds=1.0)
    wait_until(lambda: f":{first.pid}:" in (_leased_by(hub, "held") or ""), what="the first worker's lease")
    wait_until(
        lambda: any(s["pid"] == first.pid and s["name"] == "episode gated" for s in read_spans(span_file)),
        what="the first episode's span",
    )
    first.kill()  # in the middle of wait_for_gate: its span never ends, so it is never exported
    gate.touch()
    second = WorkerProcess(hub, app, tmp_path / "logs", lease_seconds=1.0)
    try:
        assert wait_terminal(hub, ["held"]) == {"held": COMPLETED}
    finally:
        second.stop()
    spans = read_spans(span_file)
    orchestrations = _check_tree(spans, hub, caller.get_span_context())
    assert list(orchestrations) == ["held"]
    assert {s["pid"] for s in spans} - {first.pid}, "spans of the takeover side"
    assert first.pid in {s["pid"] for s in spans}
    names = Counter(s["name"] for s in spans if s["name"].startswith("activity "))
    assert names == {"activity wait_for_gate": 1, "activity greet": 1}
    taken_over = next(s for s in spans if s["name"] == "activity wait_for_gate")
    assert taken_over["attributes"]["dtctl.dequeue_count"] == 2 and taken_over["pid"] != first.pid


def test_a_failed_instance_has_an_error_span(tmp_path: Path, span_file: Path, caller: Any) -> None:
    hub = new_hub(tmp_path)
    with TaskHubClient(str(hub)) as client:
        boom = client.start_instance("boom")
    worker = Dtctl(hub, tmp_path / "w.log", "worker", f"{APP}:app", "--burst")
    assert worker.process.wait(60) == 0
    worker.stop()
    assert wait_terminal(hub, [boom]) == {boom: FAILED}
    spans = read_spans(span_file)
    orchestration = _check_tree(spans, hub, caller.get_span_context())[boom]
    assert orchestration["status"] == "ERROR" and orchestration["attributes"]["dtctl.status"] == "FAILED"


IMPORTS = """
import json, sys, tempfile, os
import dtctl, dtctl.client, dtctl.runtime.worker
from dtctl.hub import open_hub
from dtctl.observe import NOOP, build_observer
from dtctl.runtime.config import WorkerConfig
path = os.path.join(tempfile.mkdtemp(), "hub.db")
hub = open_hub(path, create=True)
with dtctl.client.TaskHubClient(path) as client:
    client.start_instance("anything")
observer = build_observer(WorkerConfig(hub=path, app="x:app"), hub)
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("opentelemetry", "prometheus_client"))
print(json.dumps({"noop": observer is NOOP, "loaded": loaded}))
"""


@pytest.mark.parametrize(
    "env",
    [{}, {"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "console"}, {"OTEL_TRACES_EXPORTER": "none"}],
    ids=["unset", "sdk-disabled", "exporter-none"],
)
def test_tracing_off_imports_nothing(env: dict[str, str]) -> None:
    clean = {
        k: v
        for k, v in child_env(**env).items()
        if not k.startswith("DTCTL_OTEL") and k not in ("OTEL_TRACES_EXPORTER", "OTEL_SDK_DISABLED")
    }
    clean.update(env)
    done = subprocess.run(
        [sys.executable, "-c", IMPORTS], cwd=REPO, env=clean, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"noop": True, "loaded": []}


def test_sigterm_flushes_batched_spans(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The production path: an exporter named by OTEL_TRACES_EXPORTER, batched, flushed at drain."""
    hub = new_hub(tmp_path)
    with TaskHubClient(str(hub)) as client:
        done = client.start_instance("hello")
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "600000")  # nothing leaves before the flush at exit
    worker = Dtctl(hub, tmp_path / "w.log", "worker", f"{APP}:app")
    wait_terminal(hub, [done])
    assert worker.stop() == 0  # one SIGTERM: drain (a second one would not wait for the flush)
    exported = worker.log()
    assert exported.count('"name": "activity greet"') == 3
    assert exported.count('"name": "orchestration hello"') == 1


def test_a_caller_that_does_not_sample_gets_no_spans(tmp_path: Path, span_file: Path) -> None:
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

    hub = new_hub(tmp_path)
    tracer = TracerProvider(sampler=ALWAYS_OFF).get_tracer("test")
    with tracer.start_as_current_span("unsampled"), TaskHubClient(str(hub)) as client:
        skipped = client.start_instance("hello")
    with TaskHubClient(str(hub)) as client:  # and one without a caller: a trace of its own
        own = client.start_instance("hello")
    worker = Dtctl(hub, tmp_path / "w.log", "worker", f"{APP}:app", "--burst")
    assert worker.process.wait(60) == 0
    worker.stop()
    assert wait_terminal(hub, [skipped, own]) == {skipped: COMPLETED, own: COMPLETED}
    spans = read_spans(span_file)
    assert {s["attributes"]["dtctl.instance_id"] for s in spans} == {own}
    assert len({s["trace_id"] for s in spans}) == 1 and len(spans) == 1 + 3 + _episodes_in_history(hub, own)


def test_trace_id_ratio_sampling_keeps_or_drops_whole_workflows(
    tmp_path: Path, span_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0.5")
    hub = new_hub(tmp_path)
    with TaskHubClient(str(hub)) as client:
        ids = [client.start_instance("hello") for _ in range(12)]
    orchestrator = Dtctl(hub, tmp_path / "o.log", "worker", f"{APP}:orchestrations_only")
    runner = Dtctl(hub, tmp_path / "a.log", "worker", f"{APP}:activities_only")
    try:
        wait_terminal(hub, ids)
    finally:
        assert orchestrator.stop() == 0 and runner.stop() == 0
    spans = read_spans(span_file)
    for instance_id, kept in _by_instance(spans, "").items():  # decided once, the same in both processes
        assert len(kept) == 1 + 3 + _episodes_in_history(hub, instance_id), instance_id
