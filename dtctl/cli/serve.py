"""``dtctl serve``: the hub as a Durable Task sidecar, so durabletask SDK apps run on it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from dtctl.cli import render, render_serve, state
from dtctl.errors import ServeUnreachable, UsageError
from dtctl.hub.base import DEFAULT_MAX_DEQUEUE

SERVE_EXTRA_HINT = "pip install 'dtctl[serve]'"


def serve(
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on (loopback unless TLS or --insecure).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port (0: any free port).")] = 4001,
    tls_cert: Annotated[
        Path | None, typer.Option("--tls-cert", help="PEM certificate chain; serve over TLS.", exists=True)
    ] = None,
    tls_key: Annotated[
        Path | None, typer.Option("--tls-key", help="PEM private key of --tls-cert.", exists=True)
    ] = None,
    insecure: Annotated[
        bool, typer.Option("--insecure", help="Allow plaintext on a non-loopback address.")
    ] = False,
    token_env: Annotated[
        str | None,
        typer.Option(
            "--token-env",
            help="Name of an environment variable holding a bearer token every call must carry.",
            metavar="VAR",
        ),
    ] = None,
    lease_seconds: Annotated[
        float,
        typer.Option(
            "--lease-seconds", min=1.0, help="Lease of each work item; renewed while an SDK holds it."
        ),
    ] = 30.0,
    max_dequeue: Annotated[
        int,
        typer.Option(
            "--max-dequeue",
            min=1,
            help="How many SDK workers may die or disconnect while holding the same work item before "
            "serve fails it as poison instead of handing it out again.",
        ),
    ] = DEFAULT_MAX_DEQUEUE,
    threads: Annotated[
        int,
        typer.Option(
            "--threads", min=4, help="RPC threads (each worker stream and each waiting call uses one)."
        ),
    ] = 64,
    show_status: Annotated[
        bool,
        typer.Option(
            "--status",
            help="Print the status of the serve running at --host/--port (workers, streams, items held) "
            "and exit; with --tls-cert, that certificate is the trusted root.",
        ),
    ] = False,
) -> None:
    """Serve the hub over the Durable Task sidecar protocol (gRPC) for durabletask SDK apps.

    SDK workers (TaskHubGrpcWorker) and clients (TaskHubGrpcClient) of any language connect to it
    instead of a sidecar or the Durable Task Scheduler; the SDK replays, the hub keeps history, and
    dtctl's commands (status, history show, top, workers, purge) work on those instances as on native
    ones. Several serve processes may share one hub. SIGTERM or Ctrl-C drains: held work items get 10 s
    to complete, then every lease is given back.

    Health: the standard gRPC health check (grpc.health.v1.Health/Check, no token needed) answers
    SERVING, or NOT_SERVING while draining. --status asks a running serve at --host/--port for its
    workers, streams, items held and counters (--json: {serving, hub, pid, uptime_s, workers,
    items_held: {orchestrations, activities}, streams: [...], counters: {...}}).

    Example: dtctl --hub ./orders.db serve --port 4001
    """
    try:
        import grpc  # noqa: F401
        from google import protobuf  # noqa: F401
    except ImportError:
        raise UsageError(
            "dtctl serve needs the serve extra (grpcio, protobuf)", hint=SERVE_EXTRA_HINT
        ) from None
    from dtctl.serve.server import ServeConfig, serve_forever

    token = _token(token_env)
    if show_status:
        _show_status(f"{host}:{port}", token, tls_cert)
        return
    state.current.client()  # refuse a missing or unsafe hub before listening
    state.current.close()
    config = ServeConfig(
        hub=state.current.hub,
        host=host,
        port=port,
        tls_cert=tls_cert,
        tls_key=tls_key,
        insecure=insecure,
        token=token,
        lease_seconds=lease_seconds,
        threads=threads,
        max_dequeue=max_dequeue,
    )
    config.check()
    render.message(f"dtctl serve: hub {state.current.hub_shown}")
    serve_forever(config, _listening)


def _token(token_env: str | None) -> str | None:
    if token_env is None:
        return None
    token = os.environ.get(token_env)
    if not token:
        raise UsageError(f"--token-env {token_env}: the variable is unset or empty")
    return token


def _show_status(address: str, token: str | None, tls_cert: Path | None) -> None:
    import grpc

    from dtctl.serve.health import read_status

    root = None if tls_cert is None else tls_cert.read_bytes()
    try:
        found = read_status(address, token=token, tls_root=root, timeout=10.0)
    except grpc.RpcError as error:
        raise ServeUnreachable(
            f"no dtctl serve answered at {address}: {error.code().name} {error.details() or ''}".rstrip(),
            hint="check --host/--port (and --token-env, --tls-cert if the server uses them)",
        ) from None
    render_serve.serve_status(found, as_json=state.current.json)


def _listening(address: str) -> None:
    if state.current.json:
        render.emit_json({"listening": address, "hub": state.current.hub_shown})
    render.message(f"dtctl serve: listening on {address}")


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
