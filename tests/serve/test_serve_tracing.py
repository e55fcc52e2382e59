"""One trace from the durabletask SDK's client span through ``dtctl serve`` to the SDK worker's
orchestration and activity spans (W3C trace context on the protocol's trace-context fields)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from dtctl.hub import open_hub
from dtctl.observe.tracecontext import orchestration_span_id
from tests.helpers import wait_until
from tests.observe.spanfile import FILE_ENV, read_spans
from tests.serve.harness import SdkWorker, Serve

client_mod = pytest.importorskip("durabletask.client")

_EXPORTER = InMemorySpanExporter()


@pytest.fixture
def client_spans() -> Iterator[InMemorySpanExporter]:
    """The SDK client traces through the global provider: set once per test session, cleared per test."""
    if not getattr(trace.get_tracer_provider(), "_dtctl_test", False):
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
        provider._dtctl_test = True  # type: ignore[attr-defined]
        trace.set_tracer_provider(provider)
    _EXPORTER.clear()
    yield _EXPORTER


def test_one_trace_from_the_sdk_client_through_serve_to_the_sdk_worker(
    sqlite_hub: str, tmp_path: Path, client_spans: InMemorySpanExporter
) -> None:
    span_file = tmp_path / "spans.jsonl"
    serve = Serve(sqlite_hub, tmp_path / "logs")
    worker = SdkWorker(serve.port, tmp_path / "logs", **{FILE_ENV: str(span_file)})
    try:
        client = client_mod.TaskHubGrpcClient(host_address=serve.address)
        instance_id = client.schedule_new_orchestration("chain")
        state = client.wait_for_orchestration_completion(instance_id, timeout=60)
        assert state is not None and state.runtime_status.name == "COMPLETED"
        wait_until(
            lambda: any(s["name"].startswith("orchestration") for s in read_spans(span_file)),
            what="the SDK worker's orchestration span",
        )
    finally:
        worker.stop()
        serve.stop()
    [created] = [s for s in client_spans.get_finished_spans() if "create_orchestration" in s.name]
    context = created.get_span_context()
    assert context is not None
    trace_id, client_span = f"{context.trace_id:032x}", f"{context.span_id:016x}"
    hub = open_hub(sqlite_hub)
    try:
        record = hub.trace_record(instance_id)
    finally:
        hub.close()
    assert record is not None and record.trace_context == f"00-{trace_id}-{client_span}-01"
    spans = read_spans(span_file)
    assert spans and {s["trace_id"] for s in spans} == {trace_id}, spans
    [orchestration] = [s for s in spans if s["name"].startswith("orchestration")]
    assert orchestration["parent_span_id"] == client_span
    assert orchestration["span_id"] == f"{orchestration_span_id(instance_id, record.execution_id):016x}"
    activities = [s for s in spans if s["name"].startswith("activity")]
    assert len(activities) == 3, [s["name"] for s in spans]
    assert {s["parent_span_id"] for s in activities} == {orchestration["span_id"]}
