"""Entities observed in real worker processes: counters with ``kind="entity"``, operations by outcome,
batch sizes and times, and one span per entity operation in the calling orchestration's trace."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider

from dtctl.client import TaskHubClient
from dtctl.observe.tracecontext import orchestration_span_id
from tests.helpers import wait_until
from tests.observe.spanfile import FILE_ENV, read_spans
from tests.observe.support import APP, Dtctl, Samples, free_ports, new_hub, scrape_all, total, wait_terminal

WORKFLOWS = 3  # tally_up: two calls that complete, one that fails, one signal, each on @tally@kN


def _operations(found: Samples, message: str, status: str) -> float:
    return total(found, "dtctl_entity_operations_total", name="tally", message=message, status=status)


def _settled(found: Samples) -> bool:
    return (
        _operations(found, "call", "completed") == 2 * WORKFLOWS
        and _operations(found, "signal", "completed") == WORKFLOWS + 1
    )


def test_entity_operations_are_counted_and_traced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    span_file = tmp_path / "spans.jsonl"
    monkeypatch.setenv("DTCTL_OTEL_SPAN_EXPORTER", "tests.observe.spanfile:processor")
    monkeypatch.setenv(FILE_ENV, str(span_file))
    hub = new_hub(tmp_path)
    port = free_ports(2)
    caller = TracerProvider().get_tracer("test")
    with caller.start_as_current_span("caller") as span, TaskHubClient(str(hub)) as client:
        ids = [client.start_instance("tally_up", input=f"k{n}") for n in range(WORKFLOWS)]
        client.signal_entity("@tally@solo", "add", 5)  # from a client: under its span
    caller_trace = f"{span.get_span_context().trace_id:032x}"
    caller_span = f"{span.get_span_context().span_id:016x}"
    worker = Dtctl(
        hub, tmp_path / "worker.log", "worker", f"{APP}:app", "-c", "2", "--metrics-port", str(port)
    )
    try:
        states = wait_terminal(hub, ids)
        found = wait_until(lambda: (s := scrape_all((port, port + 1))) and _settled(s) and s, what="counters")
        with TaskHubClient(str(hub)) as client:
            totals = [client.wait_for_completion(i, timeout=30).output for i in ids]
    finally:
        assert worker.stop() == 0, worker.log()
    assert set(states.values()) == {"COMPLETED"} and totals == ["[111,true]"] * WORKFLOWS
    _check_metrics(found)
    _check_spans(read_spans(span_file), ids, caller_trace, caller_span)


def _check_metrics(found: Samples) -> None:
    assert _operations(found, "call", "failed") == WORKFLOWS
    batches = total(found, "dtctl_work_items_started_total", kind="entity", name="tally")
    assert batches >= WORKFLOWS + 1  # each entity at least once; calls wait, so usually more
    assert total(found, "dtctl_work_items_completed_total", kind="entity", name="tally") == batches
    assert total(found, "dtctl_work_items_failed_total", kind="entity", name="tally") == 0
    assert total(found, "dtctl_stale_completions_refused_total", kind="entity") == 0
    assert total(found, "dtctl_entity_batch_operations_count", name="tally") == batches
    assert total(found, "dtctl_entity_batch_operations_sum", name="tally") == 4 * WORKFLOWS + 1
    assert total(found, "dtctl_execution_seconds_count", kind="entity", name="tally") == batches


def _check_spans(spans: list[dict[str, Any]], ids: list[str], caller_trace: str, caller_span: str) -> None:
    entity_spans = [s for s in spans if s["name"].startswith("entity tally ")]
    seen = Counter((s["attributes"]["dtctl.instance_id"], s["name"]) for s in entity_spans)
    expected = Counter({("@tally@solo", "entity tally add"): 1})
    orchestrations = {
        s["attributes"]["dtctl.instance_id"]: s for s in spans if s["name"] == "orchestration tally_up"
    }
    for n, instance_id in enumerate(ids):
        expected.update({(f"@tally@k{n}", "entity tally add"): 3, (f"@tally@k{n}", "entity tally fail"): 1})
        orchestration = orchestrations[instance_id]
        execution = orchestration["attributes"]["dtctl.execution_id"]
        assert orchestration["span_id"] == f"{orchestration_span_id(instance_id, execution):016x}"
    assert seen == expected  # exactly one span per operation: none twice, none lost
    for s in entity_spans:
        caller_id = s["attributes"].get("dtctl.entity.caller_instance_id")
        if s["attributes"]["dtctl.instance_id"] == "@tally@solo":
            # the client's signal: its span (stored with the message) is the operation's parent
            assert caller_id is None and s["parent_span_id"] == caller_span and s["trace_id"] == caller_trace
            continue
        assert s["trace_id"] == caller_trace
        assert s["parent_span_id"] == orchestrations[caller_id]["span_id"]
        failed = s["attributes"]["dtctl.entity.operation"] == "fail"
        assert s["status"] == ("ERROR" if failed else "UNSET")
        assert s["attributes"]["dtctl.status"] == ("failed" if failed else "completed")
        assert s["start"] <= s["end"]
