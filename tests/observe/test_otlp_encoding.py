"""dtctl's OTLP/HTTP exporter: the bytes it writes are the SDK encoder's bytes, and its transport honours
the standard variables (endpoint, headers, compression) and retries what a collector says to retry."""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState
from opentelemetry.util.types import AttributeValue

from dtctl.observe.otlp import OtlpHttpExporter, encode_request
from dtctl.observe.tracing import SpanSink

trace_encoder = pytest.importorskip("opentelemetry.exporter.otlp.proto.common.trace_encoder")
trace_service = pytest.importorskip("opentelemetry.proto.collector.trace.v1.trace_service_pb2")
SAMPLED = TraceFlags(TraceFlags.SAMPLED)


class Kept(SpanProcessor):
    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def on_end(self, span: ReadableSpan) -> None:
        self.spans.append(span)


def _sdk_bytes(spans: list[ReadableSpan]) -> bytes:
    encoded: bytes = trace_encoder.encode_spans(spans).SerializeToString()
    return encoded


def dtctl_spans(kept: Kept, provider: TracerProvider) -> None:
    """Spans as the worker builds them: every kind, parents remote and local, errors, events."""
    sink = SpanSink(provider, [kept])
    caller = SpanContext(0xABC, 0xDEF, is_remote=True, trace_flags=SAMPLED)
    for index, kind in enumerate(SpanKind):
        own = SpanContext(0xABC, 100 + index, is_remote=False, trace_flags=SAMPLED)
        attributes = {"dtctl.instance_id": f"i-{index}", "dtctl.task_id": index, "dtctl.status": "completed"}
        sink.emit(f"activity a{index}", own, caller, attributes, (1_000 + index, 2_000_000_000), kind=kind)
    local = SpanContext(0xABC, 7, is_remote=False, trace_flags=SAMPLED)
    long_id = "x" * 300  # longer than a one-byte length, and than the cached pairs
    sink.emit(
        "episode e",
        SpanContext(0xABC, 8, is_remote=False, trace_flags=SAMPLED),
        local,
        {"dtctl.instance_id": long_id, "dtctl.execution_id": ""},
        (5, 6),
        status=Status(StatusCode.ERROR, "boom: ünïcode"),
        events=[Event("event_raised", {"dtctl.event.name": "approve"}, 5), Event("bare", None, 0)],
    )
    state = TraceState([("vendor", "v1"), ("other", "2")])
    root = SpanContext(2**128 - 1, 2**64 - 1, is_remote=False, trace_flags=SAMPLED, trace_state=state)
    sink.emit("orchestration o", root, None, {}, (0, 9), status=Status(StatusCode.OK))


def sdk_tracer_spans(provider: TracerProvider) -> None:
    """Spans an activity body opens through the SDK: another scope, links, every attribute type."""
    tracer = provider.get_tracer("body.lib", "1.2.3", schema_url="https://example.com/schema")
    linked = SpanContext(0x123, 0x456, is_remote=True, trace_flags=SAMPLED)
    values: dict[str, AttributeValue] = {
        "bool": False,
        "int": -42,
        "big": 2**62,
        "float": 2.5,
        "str": "",
        "ints": [1, -2, 3],
        "strs": ("a", "b"),
        "bools": [True, False],
    }
    with tracer.start_as_current_span(
        "outer", kind=SpanKind.SERVER, attributes=values, links=[Link(linked, {"why": "batch"})]
    ) as span:
        span.add_event("checkpoint", {"n": 3})
        with tracer.start_as_current_span("inner"):
            pass


def test_the_bytes_equal_the_sdk_encoders() -> None:
    kept = Kept()
    provider = TracerProvider(resource=Resource.create({"service.name": "orders", "host.index": 3}))
    provider.add_span_processor(kept)
    dtctl_spans(kept, provider)
    sdk_tracer_spans(provider)
    ours = [s for s in kept.spans if s.instrumentation_scope and s.instrumentation_scope.name == "dtctl"]
    theirs = [s for s in kept.spans if s not in ours]
    assert len(ours) == len(SpanKind) + 2 and len(theirs) == 2
    assert encode_request(ours) == _sdk_bytes(ours)
    assert encode_request(theirs) == _sdk_bytes(theirs)
    assert encode_request(ours) == _sdk_bytes(ours)  # again, from the caches
    # Two scopes under one resource: the grouping is the SDK's (first seen first).
    assert encode_request(ours + theirs) == _sdk_bytes(ours + theirs)


def test_two_resources_are_two_resource_spans() -> None:
    kept = Kept()
    for service in ("a", "b"):
        provider = TracerProvider(resource=Resource.create({"service.name": service}))
        provider.add_span_processor(kept)
        with provider.get_tracer("t").start_as_current_span(f"span of {service}"):
            pass
    request = trace_service.ExportTraceServiceRequest()
    request.ParseFromString(encode_request(kept.spans))
    assert [r.scope_spans[0].spans[0].name for r in request.resource_spans] == ["span of a", "span of b"]
    assert encode_request(kept.spans) == _sdk_bytes(kept.spans)


class Collector(ThreadingHTTPServer):
    def __init__(self, refusals: int) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.refusals = refusals  # answer 503 this many times first
        self.requests: list[tuple[str, Message, bytes]] = []  # path, headers (any case), body

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: Collector

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.requests.append((self.path, self.headers, body))
        refused = self.server.refusals > 0
        self.server.refusals -= 1
        self.send_response(503 if refused else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[Collector]:
    server = Collector(refusals=1)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _spans() -> list[ReadableSpan]:
    kept = Kept()
    provider = TracerProvider(resource=Resource.create({"service.name": "orders"}))
    dtctl_spans(kept, provider)
    return kept.spans


def test_the_exporter_posts_gzip_with_headers_and_retries_a_503(
    collector: Collector, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.url + "/")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "x-tenant=blue,authorization=Bearer%20t0k")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-tenant=ignored")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")
    spans = _spans()
    exporter = OtlpHttpExporter()
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    assert len(collector.requests) == 2  # the 503, then the retry
    path, headers, body = collector.requests[-1]
    assert path == "/v1/traces"
    assert headers["x-tenant"] == "blue" and headers["authorization"] == "Bearer t0k"
    assert headers["Content-Encoding"] == "gzip" and headers["Content-Type"] == "application/x-protobuf"
    request = trace_service.ExportTraceServiceRequest()
    request.ParseFromString(gzip.decompress(body))
    names = [s.name for r in request.resource_spans for ss in r.scope_spans for s in ss.spans]
    assert names == [s.name for s in spans]


def test_an_unreachable_collector_fails_the_batch_without_raising(monkeypatch: pytest.MonkeyPatch) -> None:
    server = Collector(refusals=0)
    url = server.url
    server.server_close()  # nothing listens there now
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", url + "/custom/path")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "0.3")
    exporter = OtlpHttpExporter()
    assert exporter.endpoint == url + "/custom/path"
    assert exporter.export(_spans()) is SpanExportResult.FAILURE
