"""The standard route: OTEL_TRACES_EXPORTER=otlp and OTEL_EXPORTER_OTLP_ENDPOINT point a worker at a
collector; here a tiny OTLP/HTTP collector run by the test receives the workflow's spans."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from dtctl.client import TaskHubClient
from tests.helpers import wait_until
from tests.observe.support import APP, Dtctl, new_hub, wait_terminal

trace_service = pytest.importorskip("opentelemetry.proto.collector.trace.v1.trace_service_pb2")


class Collector(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.spans: list[tuple[str, str, dict[str, object]]] = []  # (service, span name, attributes)
        self.paths: set[str] = set()


class _Handler(BaseHTTPRequestHandler):
    server: Collector

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = trace_service.ExportTraceServiceRequest()
        request.ParseFromString(body)
        self.server.paths.add(self.path)
        for resource_spans in request.resource_spans:
            resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope in resource_spans.scope_spans:
                for span in scope.spans:
                    attributes = {a.key: a.value.string_value or a.value.int_value for a in span.attributes}
                    self.server.spans.append((resource.get("service.name", ""), span.name, attributes))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()
        self.wfile.write(trace_service.ExportTraceServiceResponse().SerializeToString())

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[Collector]:
    server = Collector()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_otlp_exporter_sends_spans_to_a_collector(
    tmp_path: Path, collector: Collector, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub = new_hub(tmp_path)
    with TaskHubClient(str(hub)) as client:
        instance = client.start_instance("hello")
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{collector.server_address[1]}")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "orders-worker")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
    worker = Dtctl(hub, tmp_path / "w.log", "worker", f"{APP}:app")
    try:
        wait_terminal(hub, [instance])
        wait_until(
            lambda: any(name == "orchestration hello" for _, name, _ in collector.spans),
            what="the orchestration span at the collector",
        )
    finally:
        assert worker.stop() == 0, worker.log()
    assert collector.paths == {"/v1/traces"}
    names = sorted(name for _, name, _ in collector.spans)
    assert names.count("activity greet") == 3 and names.count("orchestration hello") == 1
    assert {service for service, _, _ in collector.spans} == {"orders-worker"}
    assert all(attributes["dtctl.instance_id"] == instance for _, _, attributes in collector.spans)
