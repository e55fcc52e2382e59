"""Run ``dtctl serve``: the gRPC server, its security settings, the hub wake-ups, a draining stop."""

from __future__ import annotations

import ipaddress
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from dtctl.errors import UsageError
from dtctl.hub import open_hub, redact
from dtctl.hub.base import DEFAULT_LEASE_SECONDS, DEFAULT_MAX_DEQUEUE, TaskHub
from dtctl.serve import health
from dtctl.serve.engine import Engine
from dtctl.serve.proto import orchestrator_service_pb2_grpc as pb_grpc
from dtctl.serve.service import Changes, Sidecar

log = logging.getLogger("dtctl.serve")

MAX_MESSAGE_BYTES = 64 * 1024 * 1024  # whole histories travel in one OrchestratorRequest
DRAIN_SECONDS = 10.0


@dataclass(frozen=True, slots=True, kw_only=True)
class ServeConfig:
    hub: str
    host: str = "127.0.0.1"
    port: int = 4001
    tls_cert: Path | None = None
    tls_key: Path | None = None
    insecure: bool = False
    token: str | None = None
    lease_seconds: float = DEFAULT_LEASE_SECONDS
    threads: int = 64
    synchronous: str = "full"
    max_dequeue: int = DEFAULT_MAX_DEQUEUE  # leases of a work item before it fails as poison

    def check(self) -> None:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise UsageError("--tls-cert and --tls-key go together")
        if not is_loopback(self.host) and self.tls_cert is None and not self.insecure:
            raise UsageError(
                f"refusing to serve on {self.host} without TLS",
                hint="give --tls-cert/--tls-key, or --insecure to accept plaintext on the network",
            )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class _BearerToken(grpc.ServerInterceptor):  # type: ignore[misc]
    """Every call must carry ``authorization: Bearer <token>`` (compared in constant time)."""

    def __init__(self, token: str) -> None:
        import hmac

        self._compare = hmac.compare_digest
        self._expected = f"Bearer {token}".encode()

        def deny(request: Any, context: grpc.ServicerContext) -> Any:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "a valid bearer token is required")

        self._deny = grpc.unary_unary_rpc_method_handler(deny)
        self._deny_stream = grpc.unary_stream_rpc_method_handler(deny)

    def intercept_service(self, continuation: Callable[[Any], Any], details: Any) -> Any:
        if details.method == health.HEALTH_CHECK_METHOD:
            return continuation(details)  # a probe has no token; the check tells nothing else
        given = dict(details.invocation_metadata).get("authorization", "")
        if self._compare(given.encode(), self._expected):
            return continuation(details)
        streaming = details.method.endswith(("/GetWorkItems", "/StreamInstanceHistory"))
        return self._deny_stream if streaming else self._deny


def wake_source(hub: TaskHub, wake: threading.Event) -> Callable[[], None]:
    """Start the hub's wake-up hints into ``wake``; returns how to stop them."""
    from dtctl.hub.wakeup.relay import relay

    return relay(hub.wake_source(), wake, name="dtctl-serve-wake")


class Server:
    def __init__(self, config: ServeConfig) -> None:
        config.check()
        self.config = config
        self._work_hub = open_hub(config.hub, synchronous=config.synchronous)
        self._client_hub = open_hub(config.hub, synchronous=config.synchronous)
        self.changes = Changes()
        self.engine = Engine(
            self._work_hub,
            lease_seconds=config.lease_seconds,
            on_change=self.changes.notify,
            max_dequeue=config.max_dequeue,
        )
        interceptors = [_BearerToken(config.token)] if config.token else []
        self._grpc = grpc.server(
            futures.ThreadPoolExecutor(max_workers=config.threads, thread_name_prefix="dtctl-serve-rpc"),
            interceptors=interceptors,
            options=[
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.so_reuseport", 0),
            ],
            maximum_concurrent_rpcs=None,
        )
        pb_grpc.add_TaskHubSidecarServiceServicer_to_server(  # type: ignore[no-untyped-call]
            Sidecar(self.engine, self._client_hub, self.changes), self._grpc
        )
        self._stop_wake: Callable[[], None] = lambda: None
        self._stopping = threading.Event()
        self._draining = threading.Event()
        self._started_at = time.time()
        self._grpc.add_generic_rpc_handlers((health.handlers(self.status, self.serving),))
        self.port = 0

    def serving(self) -> bool:
        """Leasing work: not yet draining."""
        return not self._draining.is_set()

    def status(self) -> dict[str, Any]:
        return health.status(
            self.engine, hub=redact(self.config.hub), started_at=self._started_at, serving=self.serving()
        )

    def start(self) -> int:
        address = f"{self.config.host}:{self.config.port}"
        if self.config.tls_cert is not None and self.config.tls_key is not None:
            credentials = grpc.ssl_server_credentials(
                [(self.config.tls_key.read_bytes(), self.config.tls_cert.read_bytes())]
            )
            self.port = self._grpc.add_secure_port(address, credentials)
        else:
            self.port = self._grpc.add_insecure_port(address)
        if self.port == 0:
            raise UsageError(f"cannot listen on {address} (in use, or not an address of this host)")
        self.engine.start()
        self._stop_wake = wake_source(self._work_hub, self.engine.wake)
        self._grpc.start()
        return self.port

    def install_signal_handlers(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self._stopping.set())

    def wait(self) -> None:
        while not self._stopping.wait(1.0):
            pass
        self.drain()

    def drain(self, seconds: float = DRAIN_SECONDS) -> None:
        """Stop leasing, let held items complete (up to ``seconds``), then give the rest back."""
        log.info("serve: draining (%d work item(s) held)", self.engine.held())
        self._draining.set()
        self.engine.stop_leasing()
        deadline = time.monotonic() + seconds
        while self.engine.held() and time.monotonic() < deadline:
            time.sleep(0.05)
        self._grpc.stop(grace=1.0).wait(5.0)
        self.engine.stop()
        self._stop_wake()
        self._work_hub.close()
        self._client_hub.close()

    def request_stop(self) -> None:
        self._stopping.set()


def serve_forever(config: ServeConfig, listening: Callable[[str], None]) -> None:
    """Serve until SIGTERM/SIGINT, then drain; ``listening`` gets the address once the port is bound."""
    logging.basicConfig(level=os.environ.get("DTCTL_LOG", "WARNING").upper(), format="%(message)s")
    server = Server(config)
    port = server.start()
    server.install_signal_handlers()
    scheme = "grpcs" if config.tls_cert else "grpc"
    listening(f"{scheme}://{config.host}:{port}")
    server.wait()
