"""``dtctl dashboard``: serve the hub's dashboard, a local web page (the ``dashboard`` extra)."""

from __future__ import annotations

from typing import Annotated

import typer

from dtctl.cli import render, state
from dtctl.cli.scale import MaxActivities, MaxOrchestrations


def dashboard(
    host: Annotated[
        str,
        typer.Option("--host", help="Address to listen on; a non-loopback address warns loudly."),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port to listen on.")] = 8233,
    allow_actions: Annotated[
        bool,
        typer.Option(
            "--allow-actions",
            help="Offer raise event, suspend/resume, terminate and purge (each confirmed); "
            "read-only without it.",
        ),
    ] = False,
    window: Annotated[
        float,
        typer.Option(
            "--window", min=1.0, max=300.0, metavar="SECONDS", help="Seconds of recent work on the overview."
        ),
    ] = 60.0,
    poll: Annotated[
        float,
        typer.Option(
            "--poll",
            min=0.5,
            metavar="SECONDS",
            help="Refresh pages at least this often; hub changes refresh them sooner.",
        ),
    ] = 5.0,
    max_orchestrations: MaxOrchestrations = 0,
    max_activities: MaxActivities = 0,
) -> None:
    """Serve a web dashboard of the hub: overview, instances, each instance, workers.

    The overview shows queue depths, throughput and latency charts, failures, live workers and their
    slots, and the scale recommendation; the instances page filters by status, name, id prefix and
    created/completed time and pages by keyset; an instance's page shows its status, times, payloads,
    failure with the stack, what it waits for, its history, the timeline (as history show --timeline)
    and its sub-orchestrations. Pages update live: the hub's wake-ups (a SQLite hub's file changes, a
    PostgreSQL hub's NOTIFY) push server-sent events; polling every --poll seconds is the fallback.

    Read-only unless --allow-actions; every action asks for confirmation and needs the page's
    per-process token from the same origin (POST only). Listens on 127.0.0.1 by default. No password
    of the hub URL is ever shown. While it runs, dtctl status and dtctl list print dashboard links.
    Everything is served from the package (no network needed). Needs: pip install 'dtctl[dashboard]'.

    Example: dtctl --hub ./orders.db dashboard --allow-actions
    """
    from dtctl.dashboard import require_extra

    require_extra()
    from dtctl.dashboard.app import DashboardConfig
    from dtctl.dashboard.server import serve

    config = DashboardConfig(
        hub=state.current.hub,
        host=host,
        port=port,
        allow_actions=allow_actions,
        window_seconds=window,
        poll_seconds=poll,
        limits=(max_orchestrations, max_activities),
        synchronous=state.current.synchronous,
    )
    serve(config, render.message)


def register(app: typer.Typer) -> None:
    app.command("dashboard")(dashboard)
