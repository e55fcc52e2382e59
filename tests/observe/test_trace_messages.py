"""The sender's trace context of events and signals (migration 007), seen in a real worker's spans.

An event raised by a client with a current span links the span of the episode that consumed it to the
sender's span (a span link: the sender caused the episode, it is not its parent, and the instance keeps
its own trace). A client's signal puts the entity operation's span under the signaller's span. The CLI
takes the context from the ``TRACEPARENT`` environment variable."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider

from dtctl.client import TaskHubClient
from dtctl.core.history import COMPLETED
from dtctl.observe.tracecontext import derived_trace_id, orchestration_span_id
from tests.helpers import REPO, child_env
from tests.observe.spanfile import FILE_ENV, read_spans
from tests.observe.support import APP, Dtctl, new_hub, wait_terminal

FROM_SHELL = "00-5e0c63257de34c92bf9efcd03927272e-00f067aa0ba902b7-01"
SIGNALLER = "00-8a3c60f7d188f8fa79d48a391a778fa6-53995c3f42cd8ad8-01"


@pytest.fixture
def span_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "spans.jsonl"
    monkeypatch.setenv("DTCTL_OTEL_SPAN_EXPORTER", "tests.observe.spanfile:processor")
    monkeypatch.setenv(FILE_ENV, str(path))
    return path


def _cli(hub: Path, *args: str, traceparent: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "dtctl", "--hub", str(hub), *args],
        cwd=REPO,
        env=child_env(TRACEPARENT=traceparent),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


def _ids(traceparent: str) -> tuple[str, str]:
    _, trace_id, span_id, _ = traceparent.split("-")
    return trace_id, span_id


def test_events_link_the_consuming_episode_to_their_senders(tmp_path: Path, span_file: Path) -> None:
    hub = new_hub(tmp_path)
    with TaskHubClient(str(hub)) as client:
        waiter = client.start_instance("waiter")  # no caller span: a trace of its own
        with TracerProvider().get_tracer("test").start_as_current_span("sender") as sender:
            client.raise_event(waiter, "first", 1)
    _cli(hub, "raise-event", waiter, "second", "--data", "2", traceparent=FROM_SHELL)
    worker = Dtctl(hub, tmp_path / "w.log", "worker", f"{APP}:app", "--burst")
    assert worker.process.wait(60) == 0, worker.log()
    worker.stop()
    assert wait_terminal(hub, [waiter]) == {waiter: COMPLETED}
    spans = read_spans(span_file)
    [orchestration] = [s for s in spans if s["name"] == "orchestration waiter"]
    execution = orchestration["attributes"]["dtctl.execution_id"]
    own_trace = f"{derived_trace_id(waiter, execution):032x}"
    assert orchestration["trace_id"] == own_trace and orchestration["parent_span_id"] is None
    assert orchestration["span_id"] == f"{orchestration_span_id(waiter, execution):016x}"
    episodes = [s for s in spans if s["name"] == "episode waiter"]
    assert episodes and {s["trace_id"] for s in episodes} == {own_trace}
    links = [link for s in episodes for link in s["links"]]
    context = sender.get_span_context()
    expected = {
        ("first", f"{context.trace_id:032x}", f"{context.span_id:016x}"),
        ("second", *_ids(FROM_SHELL)),
    }
    assert {(k["attributes"]["dtctl.event.name"], k["trace_id"], k["span_id"]) for k in links} == expected
    assert len(links) == 2  # each event links once, from the episode that consumed it
    assert all(k["attributes"]["dtctl.link"] == "event_raised" for k in links)


def test_client_signals_parent_the_entity_operation_to_the_signaller(tmp_path: Path, span_file: Path) -> None:
    hub = new_hub(tmp_path)
    with TaskHubClient(str(hub)) as client:
        client.signal_entity("@tally@plain", "add", 1)  # no span, no TRACEPARENT: a trace of its own
    _cli(hub, "entity", "signal", "@tally@shell", "add", "--data", "2", traceparent=SIGNALLER)
    worker = Dtctl(hub, tmp_path / "w.log", "worker", f"{APP}:app", "--burst")
    assert worker.process.wait(60) == 0, worker.log()
    worker.stop()
    spans = {
        s["attributes"]["dtctl.instance_id"]: s
        for s in read_spans(span_file)
        if s["name"] == "entity tally add"
    }
    assert set(spans) == {"@tally@plain", "@tally@shell"}
    trace_id, span_id = _ids(SIGNALLER)
    assert (spans["@tally@shell"]["trace_id"], spans["@tally@shell"]["parent_span_id"]) == (trace_id, span_id)
    assert spans["@tally@plain"]["parent_span_id"] is None and spans["@tally@plain"]["trace_id"] != trace_id
