"""``dtctl scale-recommend``: how many workers the backlog needs, or a KEDA ScaledObject that asks."""

from __future__ import annotations

from typing import Annotated

import typer

from dtctl.cli import render, render_ops, state
from dtctl.errors import UsageError

MaxOrchestrations = Annotated[
    int,
    typer.Option(
        "--max-orchestrations",
        min=0,
        metavar="N",
        help="Orchestration work items per worker, as given to `dtctl worker` (0: 16 x CPUs, at most 64).",
    ),
]
MaxActivities = Annotated[
    int,
    typer.Option(
        "--max-activities",
        min=0,
        metavar="M",
        help="Concurrent activities per worker, as given to `dtctl worker` (0: 10 x CPUs, at most 64).",
    ),
]


def per_worker_limits(max_orchestrations: int, max_activities: int) -> tuple[int, int]:
    """The limits a worker started with the same flags uses (0 means the worker's default)."""
    from dtctl.runtime.config import default_max_activities, default_max_orchestrations

    return (
        max_orchestrations or default_max_orchestrations(),
        max_activities or default_max_activities(),
    )


def scale_recommend(
    max_orchestrations: MaxOrchestrations = 0,
    max_activities: MaxActivities = 0,
    keda: Annotated[
        bool,
        typer.Option("--keda", help="Print a KEDA ScaledObject (PostgreSQL hubs) instead of the number."),
    ] = False,
    deployment: Annotated[
        str, typer.Option("--deployment", help="With --keda: the worker Deployment to scale.", metavar="NAME")
    ] = "dtctl-worker",
    connection_env: Annotated[
        str,
        typer.Option(
            "--connection-env",
            help="With --keda: the worker container's environment variable KEDA reads the connection "
            "from: the hub URL without ?hub= (not DTCTL_HUB, which names the hub for the workers).",
            metavar="VAR",
        ),
    ] = "DTCTL_KEDA_CONNECTION",
    min_replicas: Annotated[
        int,
        typer.Option(
            "--min-replicas", min=0, metavar="N", help="With --keda: minReplicaCount (0 scales to zero)."
        ),
    ] = 0,
    max_replicas: Annotated[
        int, typer.Option("--max-replicas", min=1, metavar="N", help="With --keda: maxReplicaCount.")
    ] = 100,
) -> None:
    """Print how many workers the current backlog needs (the durabletask-mssql formula).

    recommended = ceil(live orchestrations / N) + ceil(live activities / M), with N and M the
    per-worker limits (defaults: the worker's own). An instance is live when it has an inbox message
    visible now or is leased now (counted once); an activity is live when its queue row is visible now,
    leased or not. An entity counts as an orchestration (as in durabletask-mssql, where an entity is
    an instance): it is live when it has a message ready now (not waiting for a lock) or is leased
    now. Future timers, delayed signals and scheduled starts do not count, so an idle hub needs 0.

    Prints the number on stdout and the formula on stderr; --json prints the number and every input
    (recommended_workers, orchestration_workers, activity_workers, live_orchestrations, live_activities,
    max_orchestrations, max_activities, breakdown). --keda prints a KEDA ScaledObject whose postgresql
    trigger queries the hub's SQL function with the same N and M (targetQueryValue "1": one replica
    per recommended worker); KEDA needs a PostgreSQL hub. KEDA's driver refuses dtctl's ?hub=
    parameter, so the scaler reads its own variable (--connection-env, default DTCTL_KEDA_CONNECTION):
    set it in the worker container to the hub URL without ?hub= (the comment in the output shows the
    value, password hidden); the workers keep DTCTL_HUB. Names are quoted; --deployment is at most 47
    characters (KEDA's autoscaler name keda-hpa-NAME-scaler must fit in 63).

    Example: dtctl scale-recommend --max-orchestrations 8 --max-activities 8 --json
    """
    from dtctl import scale
    from dtctl.admin import redact, resolve_location

    per_orch, per_act = per_worker_limits(max_orchestrations, max_activities)
    location = resolve_location(state.current.hub)
    if keda and scale.is_postgres_location(location):
        _refuse_the_workers_variable(connection_env, state.current.hub, location)
        yaml_text = scale.keda_scaled_object(
            schema=scale.postgres_schema(location),
            max_orchestrations=per_orch,
            max_activities=per_act,
            deployment=deployment,
            connection_env=connection_env,
            min_replicas=min_replicas,
            max_replicas=max_replicas,
            connection_value=redact(scale.keda_connection_value(location)),
        )
        render_ops.keda(yaml_text)
        render.message(
            f"note: set {connection_env} in the worker container to the hub URL without ?hub= "
            f"({redact(scale.keda_connection_value(location))}); the workers keep {scale.WORKER_HUB_ENV}"
        )
        return
    metrics = state.current.client().scale_metrics()
    render_ops.recommendation(scale.recommend(metrics, per_orch, per_act), as_json=state.current.json)
    if keda:
        render.message(
            "note: no ScaledObject printed: KEDA needs the PostgreSQL hub (its scaler cannot read a local "
            "SQLite file); the number above is the recommendation"
        )


def _refuse_the_workers_variable(connection_env: str, given: str, location: str) -> None:
    """DTCTL_HUB cannot serve both: the workers need ?hub= (or @FILE), KEDA's driver refuses both."""
    from dtctl import scale

    if connection_env != scale.WORKER_HUB_ENV:
        return
    if given.startswith("@") or scale.url_names_hub(location):
        raise UsageError(
            f"--connection-env {scale.WORKER_HUB_ENV} cannot work for this hub: the workers need its "
            "?hub= parameter (or @FILE), which KEDA's PostgreSQL driver refuses",
            hint=f"leave --connection-env at its default ({scale.DEFAULT_CONNECTION_ENV}) and set that "
            "variable to the URL without ?hub=",
        )


def register(app: typer.Typer) -> None:
    app.command("scale-recommend")(scale_recommend)
