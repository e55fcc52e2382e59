"""Where a worker's spans go: the span processors and exporters the environment names, and the resource.

Used by the worker's tracer (:mod:`dtctl.observe.tracing`, with ``DTCTL_OTEL_EXPORT=inline``) and by its
exporter process (:mod:`dtctl.observe.spanpipe`).
"""

from __future__ import annotations

import importlib
import logging
import os

from opentelemetry.sdk.resources import PROCESS_PID, SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

from dtctl.observe.tracecontext import EXPORTER_FACTORY_ENV

log = logging.getLogger("dtctl.tracing")


def _factory_processors(spec: str) -> list[SpanProcessor]:
    module, _, attribute = spec.partition(":")
    made = getattr(importlib.import_module(module), attribute or "exporter")()
    return [made if isinstance(made, SpanProcessor) else BatchSpanProcessor(made)]


def _named_exporter(name: str) -> SpanExporter:
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    if name == "otlp":
        protocol = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or os.environ.get(
            "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"
        )
        if protocol.strip() != "grpc":
            from dtctl.observe.otlp import OtlpHttpExporter

            return OtlpHttpExporter()  # the wire format written directly: see dtctl.observe.otlp
        module = importlib.import_module("opentelemetry.exporter.otlp.proto.grpc.trace_exporter")
        exporter: SpanExporter = module.OTLPSpanExporter()
        return exporter
    from importlib.metadata import entry_points

    for entry in entry_points(group="opentelemetry_traces_exporter", name=name):
        made: SpanExporter = entry.load()()
        return made
    raise LookupError(f"no OpenTelemetry span exporter named {name!r}")


def span_processors() -> list[SpanProcessor]:
    """The processors the environment asks for (an exporter that cannot load is logged and skipped)."""
    factory = os.environ.get(EXPORTER_FACTORY_ENV)
    if factory:
        return _factory_processors(factory)
    processors: list[SpanProcessor] = []
    for name in os.environ.get("OTEL_TRACES_EXPORTER", "").split(","):
        name = name.strip().lower()
        if not name or name == "none":
            continue
        try:
            processors.append(BatchSpanProcessor(_named_exporter(name)))
        except (ImportError, LookupError) as exc:
            log.error(
                "tracing: span exporter %r unavailable (%s); install 'dtctl[tracing]' and its exporter",
                name,
                exc,
            )
    return processors


def worker_resource(pid: int) -> Resource:
    """The resource of a worker's spans: ``OTEL_SERVICE_NAME`` / ``OTEL_RESOURCE_ATTRIBUTES`` (default
    service name ``dtctl-worker``) and the worker's ``process.pid``."""
    own: dict[str, str | int] = {PROCESS_PID: pid}
    if not os.environ.get("OTEL_SERVICE_NAME"):
        own[SERVICE_NAME] = "dtctl-worker"
    return Resource.create(own)
