"""A span exporter for the tests: every ended span becomes one JSON line in ``DTCTL_TEST_SPAN_FILE``.

Selected in worker processes with ``DTCTL_OTEL_SPAN_EXPORTER=tests.observe.spanfile:processor``. Spans
are written as they end (a simple processor, one ``O_APPEND`` write per span), so a process killed with
SIGKILL has already written every span it ended, and processes sharing the file never interleave lines.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

FILE_ENV = "DTCTL_TEST_SPAN_FILE"


class JsonLinesExporter(SpanExporter):
    def __init__(self, path: str) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        for span in spans:
            os.write(self._fd, (json.dumps(as_dict(span)) + "\n").encode())
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        os.close(self._fd)


def as_dict(span: ReadableSpan) -> dict[str, Any]:
    context = span.get_span_context()
    assert context is not None
    return {
        "name": span.name,
        "trace_id": f"{context.trace_id:032x}",
        "span_id": f"{context.span_id:016x}",
        "parent_span_id": f"{span.parent.span_id:016x}" if span.parent else None,
        "start": span.start_time,
        "end": span.end_time,
        "status": span.status.status_code.name,
        "attributes": dict(span.attributes or {}),
        "links": [
            {
                "trace_id": f"{link.context.trace_id:032x}",
                "span_id": f"{link.context.span_id:016x}",
                "attributes": dict(link.attributes or {}),
            }
            for link in span.links
        ],
        "service": (span.resource.attributes or {}).get("service.name"),
        "pid": (span.resource.attributes or {}).get("process.pid"),  # the worker that made it
    }


def processor() -> SimpleSpanProcessor:
    return SimpleSpanProcessor(JsonLinesExporter(os.environ[FILE_ENV]))


def read_spans(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
