"""The health of one ``dtctl serve`` process: the standard gRPC health check and a JSON status call.

Two services beside the sidecar service, on the same port (and the same TLS):

- ``grpc.health.v1.Health/Check``, the standard health protocol (Kubernetes gRPC probes,
  ``grpc_health_probe``): SERVING while the server leases work, NOT_SERVING once it drains. It takes
  no bearer token (a probe has none) and tells nothing but that one status. Its two messages have one
  field each, so they are encoded here rather than pulling in the ``grpcio-health-checking`` package.
- ``dtctl.serve.v1.Serve/Status``: a JSON document (:func:`status`) with the connected SDK worker
  streams, the work items each holds and the engine's counters; ``dtctl serve --status`` reads it.
  It is guarded by the bearer token like every sidecar call.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from typing import Any

import grpc

from dtctl.serve.engine import Engine

HEALTH_SERVICE = "grpc.health.v1.Health"
STATUS_SERVICE = "dtctl.serve.v1.Serve"
STATUS_METHOD = f"/{STATUS_SERVICE}/Status"
HEALTH_CHECK_METHOD = f"/{HEALTH_SERVICE}/Check"
# The services a health check may name ("" is the server as a whole).
KNOWN_SERVICES = frozenset({"", "TaskHubSidecarService", HEALTH_SERVICE, STATUS_SERVICE})
SERVING, NOT_SERVING = 1, 2  # grpc.health.v1.HealthCheckResponse.ServingStatus


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if at >= len(data) or shift > 63:
            raise ValueError("truncated varint")
        byte = data[at]
        value |= (byte & 0x7F) << shift
        at += 1
        if not byte & 0x80:
            return value, at
        shift += 7


def health_request_service(data: bytes) -> str:
    """The ``service`` (field 1) of a HealthCheckRequest; other fields are skipped as protobuf says."""
    at, service = 0, ""
    while at < len(data):
        key, at = _varint(data, at)
        number, wire = key >> 3, key & 7
        if wire == 0:
            _, at = _varint(data, at)
        elif wire == 2:
            size, at = _varint(data, at)
            if number == 1:
                service = data[at : at + size].decode()
            at += size
        elif wire in (1, 5):
            at += 8 if wire == 1 else 4
        else:
            raise ValueError(f"unexpected wire type {wire}")
    return service


def health_response(status: int) -> bytes:
    """A HealthCheckResponse: field 1 (``status``, an enum) as a varint."""
    return bytes((0x08, status))


def status(engine: Engine, *, hub: str, started_at: float, serving: bool) -> dict[str, Any]:
    """What this serve process is doing now (read from the RPC thread: counts only, no iteration races)."""
    streams = engine.streams()
    return {
        "serving": serving,
        "hub": hub,
        "pid": os.getpid(),
        "uptime_s": round(time.time() - started_at, 1),
        "workers": len(streams),
        "items_held": {
            "orchestrations": sum(len(s.orchestrations) for s in streams),
            "activities": sum(len(s.activities) for s in streams),
            "entities": sum(len(s.entities) for s in streams),
        },
        "streams": [
            {
                "worker_id": s.owner,
                "peer": s.peer,
                "orchestrations": sorted(s.names.orchestrations or ("*",)),
                "activities": sorted(s.names.activities or ("*",)),
                "held_orchestrations": len(s.orchestrations),
                "held_activities": len(s.activities),
                "max_orchestrations": s.max_orchestrations,
                "max_activities": s.max_activities,
                "entities": sorted(s.names.entities if s.names.entities is not None else ("*",)),
                "held_entities": len(s.entities),
                "max_entities": s.max_entities,
            }
            for s in streams
        ],
        "counters": {
            "episodes": engine.episodes,
            "activities": engine.activities,
            "entity_batches": engine.entity_batches,
            "refused": engine.refused,
            "poisoned": engine.poisoned,
            "group_commits": engine.commits,
            "items_sent": engine.leased,
            "lease_rounds": engine.lease_rounds,
            "engine_cpu_ms": round(engine.cpu_seconds * 1000),
        },
    }


def handlers(report: Callable[[], dict[str, Any]], serving: Callable[[], bool]) -> grpc.GenericRpcHandler:
    """Both services as one generic handler (raw bytes in and out: no generated stubs needed)."""

    def check(request: bytes, context: grpc.ServicerContext) -> bytes:
        try:
            service = health_request_service(request)
        except (ValueError, UnicodeDecodeError):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "malformed HealthCheckRequest")
        if service not in KNOWN_SERVICES:
            context.abort(grpc.StatusCode.NOT_FOUND, f"unknown service {service!r}")
        return health_response(SERVING if serving() else NOT_SERVING)

    def get_status(request: bytes, context: grpc.ServicerContext) -> bytes:
        return json.dumps(report()).encode()

    class _Handler(grpc.GenericRpcHandler):  # type: ignore[misc]
        def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
            method = details.method
            if method == HEALTH_CHECK_METHOD:
                return grpc.unary_unary_rpc_method_handler(check)
            if method == STATUS_METHOD:
                return grpc.unary_unary_rpc_method_handler(get_status)
            return None

    return _Handler()


def read_status(address: str, *, token: str | None, tls_root: bytes | None, timeout: float) -> dict[str, Any]:
    """Call ``Status`` on a running serve (``dtctl serve --status``)."""
    channel = (
        grpc.insecure_channel(address)
        if tls_root is None
        else grpc.secure_channel(address, grpc.ssl_channel_credentials(tls_root))
    )
    with channel:
        call = channel.unary_unary(STATUS_METHOD)
        metadata = (("authorization", f"Bearer {token}"),) if token else None
        answer = call(b"", timeout=timeout, metadata=metadata)
    found: dict[str, Any] = json.loads(answer)
    return found
