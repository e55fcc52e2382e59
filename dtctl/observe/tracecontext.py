"""W3C trace context without OpenTelemetry: parsing, formatting, and the ids dtctl derives itself.

Importing this module imports nothing from opentelemetry: the client asks :func:`current_traceparent`
for its caller's context only when the caller's program has imported opentelemetry already (a program
that never did has no span to carry), and workers ask :func:`tracing_requested` before importing
:mod:`dtctl.observe.tracing`.

An orchestration's span is exported once, when its execution ends, but its episodes and activities,
which end earlier (in any worker process), must name it as their parent. So its span id is derived from
the instance and execution ids (:func:`orchestration_span_id`) and every process computes the same one;
an instance started by a caller without a trace gets a trace id derived the same way
(:func:`derived_trace_id`), so one workflow is still one trace.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
from dataclasses import dataclass

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")

# Tests and custom pipelines name a factory ``module:attribute`` here; it returns a SpanExporter
# (batched) or a SpanProcessor (used as is).
EXPORTER_FACTORY_ENV = "DTCTL_OTEL_SPAN_EXPORTER"
# The environment carrier of a W3C trace context (what the CLI's start, raise-event and signal read).
ENVIRONMENT_CARRIER = "TRACEPARENT"


@dataclass(frozen=True, slots=True)
class TraceParent:
    trace_id: int
    span_id: int
    sampled: bool = True

    def header(self) -> str:
        flags = "01" if self.sampled else "00"
        return f"00-{self.trace_id:032x}-{self.span_id:016x}-{flags}"


def parse(value: str | None) -> TraceParent | None:
    """A ``traceparent`` header (version 00), or None when absent or malformed (never an error)."""
    if not value:
        return None
    match = _TRACEPARENT.match(value.strip())
    if match is None:
        return None
    trace_id, span_id = int(match.group(1), 16), int(match.group(2), 16)
    if trace_id == 0 or span_id == 0:
        return None
    return TraceParent(trace_id, span_id, bool(int(match.group(3), 16) & 1))


def _digest(size: int, *parts: str) -> int:
    value = int.from_bytes(hashlib.blake2b("\0".join(parts).encode(), digest_size=size).digest(), "big")
    return value or 1  # zero is the invalid id


def orchestration_span_id(instance_id: str, execution_id: str) -> int:
    return _digest(8, "dtctl-orchestration", instance_id, execution_id)


def derived_trace_id(instance_id: str, execution_id: str) -> int:
    return _digest(16, "dtctl-trace", instance_id, execution_id)


def _disabled() -> bool:
    return os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"


def tracing_requested() -> bool:
    """Whether this process should trace: an exporter is named (``OTEL_TRACES_EXPORTER`` other than
    ``none``, or a factory in ``DTCTL_OTEL_SPAN_EXPORTER``) and ``OTEL_SDK_DISABLED`` is not true."""
    if _disabled():
        return False
    exporters = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    return bool(os.environ.get(EXPORTER_FACTORY_ENV)) or exporters not in ("", "none")


def current_traceparent() -> str | None:
    """The caller's current span as a ``traceparent``, to store with an instance it starts, an event it
    raises or a signal it sends; without one, a valid ``TRACEPARENT`` environment variable.

    Without opentelemetry already imported by the program there is no current span: nothing is
    imported, nothing is paid. ``TRACEPARENT`` is OpenTelemetry's convention for handing a context to a
    child process through its environment (a CI job, a shell script running ``dtctl start``)."""
    if _disabled():
        return None
    if "opentelemetry.trace" in sys.modules:
        from opentelemetry import trace

        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            return TraceParent(context.trace_id, context.span_id, bool(context.trace_flags.sampled)).header()
    inherited = parse(os.environ.get(ENVIRONMENT_CARRIER))
    return None if inherited is None else inherited.header()
