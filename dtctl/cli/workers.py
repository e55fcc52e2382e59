"""``dtctl worker``: run worker processes for an app."""

from __future__ import annotations

from typing import Annotated

import typer

from dtctl.cli import render, state
from dtctl.core.tags import check_version
from dtctl.core.versioning import parse_failure, parse_match
from dtctl.errors import UsageError
from dtctl.runtime.config import DEFAULT_STALL_TIMEOUT, WorkerConfig
from dtctl.runtime.loader import load_app


def worker(
    app_spec: Annotated[
        str, typer.Argument(help="The app: module:attribute or path/to/file.py:attribute.", metavar="APP")
    ],
    concurrency: Annotated[int, typer.Option("--concurrency", "-c", min=1, help="Worker processes.")] = 1,
    max_orchestrations: Annotated[
        int,
        typer.Option(
            "--max-orchestrations",
            min=0,
            help="Orchestration work items per batch (0: 16 x CPUs, at most 64).",
        ),
    ] = 0,
    max_activities: Annotated[
        int,
        typer.Option(
            "--max-activities", min=0, help="Concurrent activities per process (0: 10 x CPUs, at most 64)."
        ),
    ] = 0,
    max_entities: Annotated[
        int,
        typer.Option(
            "--max-entities",
            min=0,
            help="Entities (each with its waiting operations) per batch (0: 16 x CPUs, at most 64).",
        ),
    ] = 0,
    lease_seconds: Annotated[
        float,
        typer.Option(
            "--lease-seconds", min=1.0, help="How long a lease lasts before another worker may take the work."
        ),
    ] = 30.0,
    stall_timeout: Annotated[
        float,
        typer.Option(
            "--stall-timeout",
            min=1.0,
            help=(
                "Seconds an episode (or a worker process's main loop) may run without coming back before "
                "it is stopped; a runaway proved alone is failed as poison."
            ),
            metavar="SECONDS",
        ),
    ] = DEFAULT_STALL_TIMEOUT,
    burst: Annotated[bool, typer.Option("--burst", help="Drain the visible backlog, then exit.")] = False,
    synchronous: Annotated[
        str,
        typer.Option(
            "--synchronous",
            help="full (durable, default) or normal (faster; may lose the last commits on power loss).",
        ),
    ] = "full",
    version: Annotated[
        str | None,
        typer.Option("--version", help="This worker's orchestration version.", metavar="V"),
    ] = None,
    version_match: Annotated[
        str | None,
        typer.Option(
            "--version-match",
            help="Which instance versions it runs: none (any), strict (exactly --version) or "
            "current-or-older (--version or older). Default: the app's, else none.",
            metavar="STRATEGY",
        ),
    ] = None,
    version_failure: Annotated[
        str | None,
        typer.Option(
            "--version-failure",
            help="An instance at a version it does not match: reject (leave it for another worker; "
            "default) or fail (fail the instance).",
            metavar="STRATEGY",
        ),
    ] = None,
    metrics_port: Annotated[
        int,
        typer.Option(
            "--metrics-port",
            min=0,
            max=65535,
            metavar="PORT",
            help="Serve Prometheus /metrics: worker process i on PORT + i (0: off). Needs dtctl[metrics].",
        ),
    ] = 0,
    metrics_host: Annotated[
        str, typer.Option("--metrics-host", help="Address /metrics listens on (loopback by default).")
    ] = "127.0.0.1",
    log_format: Annotated[
        str, typer.Option("--log-format", help="text, or json: one JSON object per line on stderr.")
    ] = "text",
    log_level: Annotated[
        str, typer.Option("--log-level", help="DEBUG, INFO, WARNING (default), ERROR or CRITICAL.")
    ] = "WARNING",
) -> None:
    """Run worker processes that execute the app's orchestrations, activities and entities.

    Workers compete for work over the hub; run as many as you like, on one hub. SIGTERM or Ctrl-C
    drains: in-flight activities finish (up to 10 s) and every lease is given back at once; a process
    still busy in user code after that ends anyway.

    A work item whose worker process died or stalled while it held it runs again alone, in a process
    of its own: an activity that crashes its process (a segfault, os._exit) or an episode that runs
    past --stall-timeout is failed as poison with the reason, and nothing else is charged for it.

    With --version and --version-match strict or current-or-older, a worker runs only the instances
    whose version it matches (versions compare as in the durabletask SDK: PEP 440 where both parse,
    else as strings; no version is the oldest). The others it leaves for another worker (it never
    leases them; dtctl status says why they wait) or, with --version-failure fail, fails them.

    Monitoring: --metrics-port serves each process's counters and histograms for Prometheus (hub-wide
    gauges come from `dtctl metrics serve`); OpenTelemetry spans are exported when the standard
    OTEL_TRACES_EXPORTER / OTEL_EXPORTER_OTLP_ENDPOINT / OTEL_SERVICE_NAME variables ask for them
    (dtctl[tracing]); --log-format json writes one JSON object per line with the worker id and the work
    item's instance id, name and task id.

    Example: dtctl worker samples/hello_cities.py:app --concurrency 4 --metrics-port 9100

    Example: dtctl worker samples/versioning.py:app --version 2.0 --version-match current-or-older
    """
    from dtctl.observe.logs import FORMATS, LEVELS
    from dtctl.runtime.supervisor import Supervisor

    if synchronous not in ("full", "normal"):
        raise typer.BadParameter("must be 'full' or 'normal'", param_hint="--synchronous")
    _check_versioning(version, version_match, version_failure)
    if log_format not in FORMATS:
        raise typer.BadParameter("must be 'text' or 'json'", param_hint="--log-format")
    if log_level.upper() not in LEVELS:
        raise typer.BadParameter(f"must be one of {', '.join(LEVELS)}", param_hint="--log-level")
    if metrics_port:
        from dtctl.observe import require_metrics

        require_metrics()
    loaded = load_app(app_spec)  # fail here, with the import error, rather than in N children
    state.current.client()  # and refuse a missing or unsafe hub before starting anything
    state.current.close()
    config = WorkerConfig(
        hub=state.current.hub,
        app=app_spec,
        max_orchestrations=max_orchestrations,
        max_activities=max_activities,
        max_entities=max_entities,
        lease_seconds=lease_seconds,
        stall_timeout=stall_timeout,
        burst=burst,
        synchronous=synchronous,
        version=check_version(version),
        version_match=version_match,
        version_failure=version_failure,
        metrics_port=metrics_port,
        metrics_host=metrics_host,
        log_format=log_format,
        log_level=log_level.upper(),
    )
    render.message(
        f"dtctl worker: {concurrency} process(es) for {len(loaded.orchestrators)} orchestrator(s) and "
        f"{len(loaded.activities)} activity(ies)"
        + (f" and {len(loaded.entities)} entity(ies)" if loaded.entities else "")
        + f" on {state.current.hub_shown}"
    )
    supervisor = Supervisor(config, concurrency, notify=render.message)
    supervisor.install_signal_handlers()
    code = supervisor.run()
    if code:
        raise typer.Exit(code)


def _check_versioning(version: str | None, match: str | None, failure: str | None) -> None:
    """Bad versioning options fail here (exit 2), not in every worker process."""
    try:
        if match is not None:
            parse_match(match)
        if failure is not None:
            parse_failure(failure)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    check_version(version)


def register(app: typer.Typer) -> None:
    app.command("worker")(worker)
