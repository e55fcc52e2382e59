"""``dtctl workers``: the worker processes of the hub, live or lost, from their heartbeats."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from dtctl.cli import render_ops, state

if TYPE_CHECKING:
    from dtctl.hub.base import TaskHub

LostAfter = Annotated[
    float | None,
    typer.Option(
        "--lost-after",
        min=0.1,
        help="Seconds without a heartbeat after which a worker counts as lost "
        "(default 30: workers beat every 5 s).",
        metavar="SECONDS",
    ),
]


def workers(
    lost_after: LostAfter = None,
    forget_lost: Annotated[
        bool, typer.Option("--forget-lost", help="Remove the rows of lost workers from the hub.")
    ] = False,
) -> None:
    """List the worker processes on the hub: live, or lost when their heartbeat stopped.

    For each worker: its id (host:pid:random), pid, state, last heartbeat, start time, the instances
    and activity tasks it holds leases on now against its --max-orchestrations / --max-activities
    (ORCH/MAX, ACT/MAX; activity leases include finished results waiting for their commit, so they can
    briefly exceed the limit), and the names it registered. A worker that stops cleanly removes itself;
    a killed one stays, shown lost, until --forget-lost. --json prints {"workers": [{worker_id, host,
    pid, state, started_at, heartbeat_at, heartbeat_age_seconds, orchestrations: {leased, max},
    activities: {leased, running (at its last heartbeat), max}, registered: {orchestrations,
    activities}}], "forgotten": [...]}.

    Example: dtctl workers --lost-after 20
    """
    from dtctl import ops

    hub = state.current.client().hub
    rows = hub.list_workers()
    leases = hub.lease_holders()
    health = ops.worker_health(rows, leases, hub.now(), lost_after)
    forgotten: list[str] = []
    if forget_lost:
        for h in health:
            if not h.live:
                hub.remove_worker(h.info.worker_id)
                forgotten.append(h.info.worker_id)
        health = [h for h in health if h.live]
    render_ops.workers(health, as_json=state.current.json, forgotten=forgotten)


def register(app: typer.Typer) -> None:
    app.command("workers")(workers)


def note_unclaimable(hub: TaskHub) -> None:
    """For ``dtctl list``: a stderr note naming ready work that no live worker registered."""
    from dtctl import ops

    live = ops.live_workers(hub.list_workers(), hub.now())
    render_ops.unclaimable_note(ops.unclaimable_backlog(hub.backlog_by_name(), live), len(live))
