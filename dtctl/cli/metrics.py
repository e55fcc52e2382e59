"""``dtctl metrics serve``: the hub's gauges for Prometheus, from one designated exporter."""

from __future__ import annotations

from typing import Annotated

import typer

from dtctl.cli import render, state
from dtctl.cli.scale import MaxActivities, MaxOrchestrations, per_worker_limits
from dtctl.cli.workersview import LostAfter

metrics_app = typer.Typer(help="Export the hub's metrics for Prometheus.", no_args_is_help=True)


@metrics_app.command("serve")
def serve(
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on (loopback by default).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port to listen on.")] = 9464,
    window: Annotated[
        float,
        typer.Option("--window", min=1.0, max=300.0, metavar="SECONDS", help="Seconds of recent work."),
    ] = 60.0,
    max_orchestrations: MaxOrchestrations = 0,
    max_activities: MaxActivities = 0,
    lost_after: LostAfter = None,
) -> None:
    """Serve the hub's gauges on /metrics: queue depths, oldest waiting, instances, workers, scale.

    Hub-wide gauges come from this one exporter per hub, never from the workers, so they are never
    counted once per worker: dtctl_hub_queue_depth{queue,state} (waiting, leased, later),
    dtctl_hub_oldest_waiting_seconds{queue}, dtctl_hub_instances{status}, dtctl_hub_workers{state}
    (live, lost), dtctl_hub_worker_slots{kind,state}, dtctl_hub_unclaimable_backlog,
    dtctl_hub_scale_recommendation and dtctl_hub_scale_live_work_items{kind}, each with a hub label.
    Each scrape reads one snapshot, the same as `dtctl top --once --json`. Workers serve their own
    counters and histograms with `dtctl worker --metrics-port`. Needs: pip install 'dtctl[metrics]'.

    Example: dtctl --hub ./orders.db metrics serve --port 9464
    """
    from dtctl import admin, ops
    from dtctl.observe import require_metrics

    require_metrics()
    from dtctl.observe.hubmetrics import hub_registry, serve_forever

    hub = state.current.client().hub
    per_orch, per_act = per_worker_limits(max_orchestrations, max_activities)
    where = admin.redact(hub.url)

    def view() -> ops.TopView:
        return ops.top_view(hub.hub_snapshot(window), per_orch, per_act, lost_after)

    def ready(bound: int) -> None:
        render.message(f"dtctl metrics: serving http://{host}:{bound}/metrics for {where}")

    try:
        serve_forever(hub_registry(where, view), host, port, ready)
    except KeyboardInterrupt:
        return


def register(app: typer.Typer) -> None:
    app.add_typer(metrics_app, name="metrics")
