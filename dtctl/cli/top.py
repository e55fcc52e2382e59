"""``dtctl top``: a live, full-screen view of the hub; ``--once`` prints one snapshot."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer

from dtctl.cli import render_ops, state
from dtctl.cli.scale import MaxActivities, MaxOrchestrations, per_worker_limits
from dtctl.cli.workersview import LostAfter

if TYPE_CHECKING:
    from dtctl.hub.base import WakeUps

MIN_REFRESH = 0.25  # seconds between two refreshes at most this often, however busy the hub is


def top(
    once: Annotated[
        bool, typer.Option("--once", help="Print one snapshot and exit (also when not a TTY).")
    ] = False,
    window: Annotated[
        float,
        typer.Option(
            "--window",
            min=1.0,
            max=300.0,
            metavar="SECONDS",
            help="Seconds of recent work for rates, latency and failures.",
        ),
    ] = 60.0,
    interval: Annotated[
        float,
        typer.Option(
            "--interval",
            min=MIN_REFRESH,
            metavar="SECONDS",
            help="Refresh at least this often (seconds); hub changes refresh sooner.",
        ),
    ] = 1.0,
    max_orchestrations: MaxOrchestrations = 0,
    max_activities: MaxActivities = 0,
    lost_after: LostAfter = None,
) -> None:
    """Watch the hub live: queues, workers, throughput, latency, failures, scale recommendation.

    Shows the orchestration inbox, the activity queue and the entity queue (ready now, leased, visible
    only later, and the oldest work item nobody holds), live instances, what finished in the last
    --window seconds (orchestrations completed/s, episodes/s, activities/s, failures), schedule-to-start
    and start-to-complete latency p50/p95 of episodes and activities, live and lost workers with the
    leases they hold against their limits, ready work no live worker can take, and the scale
    recommendation for the given limits. The screen refreshes when the hub changes (a SQLite hub's
    files change, a PostgreSQL hub sends NOTIFY; at most 4 times a second) and at least every
    --interval. Ctrl-C quits. Works the same on SQLite and PostgreSQL hubs.

    With --once, or when stdout is not a terminal, prints one snapshot (text, or --json:
    {hub, at, window_seconds, queues, entity_queue, oldest_waiting, instances, throughput_per_second, latency,
    failures, workers, unclaimable_backlog, scale}) and exits 0.

    Example: dtctl top --once --json
    """
    from dtctl import admin, ops

    hub = state.current.client().hub
    per_orch, per_act = per_worker_limits(max_orchestrations, max_activities)
    where = admin.redact(hub.url)

    def view() -> ops.TopView:
        return ops.top_view(hub.hub_snapshot(window), per_orch, per_act, lost_after, hub.entity_health())

    if once or state.current.json or not sys.stdout.isatty():
        render_ops.top_once(view(), where, as_json=state.current.json)
        return
    _live(lambda: render_ops.top_renderable(view(), where), hub, interval)


def _live(renderable: Callable[[], Any], hub: WakeUps, interval: float) -> None:
    """Redraw on hub changes (the hub's wake source: file changes, NOTIFY) or every ``interval`` seconds."""
    from rich.console import Console
    from rich.live import Live

    wake = hub.wake_source()
    try:
        with Live(renderable(), console=Console(), screen=True, auto_refresh=False) as live:
            while True:
                shown = time.monotonic()
                wake.wait(interval)
                wake.clear()
                # However busy the hub, redraw at most every MIN_REFRESH seconds (a wait, not a spin).
                pause = MIN_REFRESH - (time.monotonic() - shown)
                if pause > 0:
                    threading.Event().wait(pause)
                wake.before_look()  # changes so far are in the redraw: only later ones wake the next wait
                live.update(renderable(), refresh=True)
    except KeyboardInterrupt:
        return
    finally:
        wake.close()


def register(app: typer.Typer) -> None:
    app.command("top")(top)
