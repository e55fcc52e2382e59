"""``dtctl serve``: the hub as a Durable Task sidecar, so durabletask SDK apps run on it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from dtctl.cli import render, state
from dtctl.errors import UsageError

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
    threads: Annotated[
        int,
        typer.Option(
            "--threads", min=4, help="RPC threads (each worker stream and each waiting call uses one)."
        ),
    ] = 64,
) -> None:
    """Serve the hub over the Durable Task sidecar protocol (gRPC) for durabletask SDK apps.

    SDK workers (TaskHubGrpcWorker) and clients (TaskHubGrpcClient) of any language connect to it
    instead of a sidecar or the Durable Task Scheduler; the SDK replays, the hub keeps history, and
    dtctl's commands (status, history show, top, workers, purge) work on those instances as on native
    ones. Several serve processes may share one hub. SIGTERM or Ctrl-C drains: held work items get 10 s
    to complete, then every lease is given back.

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

    token = None
    if token_env is not None:
        token = os.environ.get(token_env)
        if not token:
            raise UsageError(f"--token-env {token_env}: the variable is unset or empty")
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
    )
    config.check()
    render.message(f"dtctl serve: hub {state.current.hub_shown}")
    serve_forever(config, _listening)


def _listening(address: str) -> None:
    if state.current.json:
        render.emit_json({"listening": address, "hub": state.current.hub_shown})
    render.message(f"dtctl serve: listening on {address}")


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
