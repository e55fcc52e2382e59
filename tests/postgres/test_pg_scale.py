"""The scale recommendation as a SQL function, on the server's clock, for KEDA."""

from __future__ import annotations

import math

from dtctl.core.decision import CreateTimer, ScheduleTask
from dtctl.hub.postgres import PostgresTaskHub
from tests import pgserver
from tests.helpers import wait_until
from tests.hub.hub_helpers import start, step


def recommend(
    server: pgserver.PgServer, schema: str, orchestrations: int | None, activities: int | None
) -> int:
    """The KEDA query, run as KEDA would: schema-qualified, from a connection with no search_path."""
    with server.admin() as conn:
        row = conn.execute(f"SELECT {schema}.scale_recommendation(%s, %s)", (orchestrations, activities))
        value = row.fetchone()
    assert value is not None and isinstance(value[0], int)
    return value[0]


def formula(live_orchestrations: int, live_activities: int, per_orch: int, per_act: int) -> int:
    return math.ceil(live_orchestrations / max(per_orch, 1)) + math.ceil(live_activities / max(per_act, 1))


def test_idle_hub_recommends_zero(pg_server: pgserver.PgServer, pg_hub: PostgresTaskHub) -> None:
    assert recommend(pg_server, pg_hub.schema, 8, 8) == 0
    assert recommend(pg_server, pg_hub.schema, None, None) == 0  # never NULL


def test_scale_recommendation_matches_the_formula_on_a_known_backlog(
    pg_server: pgserver.PgServer, pg_hub: PostgresTaskHub
) -> None:
    hub = pg_hub
    hour = 3_600_000_000
    # Nine instances with a visible message; one of them with four (counted once).
    start(hub, *[f"v{n}" for n in range(9)])
    for n in range(3):
        hub.raise_event("v0", f"e{n}", None)
    # Four of them leased right now (leased AND visible: still once each).
    leased = hub.lease_orchestrations("w", ["orch"], limit=4, lease_seconds=600)
    assert len(leased) == 4
    # Not live: a scheduled start in the future, an instance waiting on a future timer.
    start(hub, "later", start_at=hub.now() + hour)
    start(hub, "timer")
    step(hub, "timer", actions=[CreateTimer(task_id=0, fire_at=hub.now() + hour)])
    # Eleven activity rows; five leased (still live), two abandoned (invisible for a backoff).
    start(hub, "acts")
    step(hub, "acts", actions=[ScheduleTask(task_id=n, name="act") for n in range(11)])
    tasks = hub.lease_activities("w", None, limit=5, lease_seconds=600)
    for task in tasks[:2]:
        hub.abandon_activity(task)

    metrics = hub.scale_metrics()
    assert (metrics.live_orchestrations, metrics.live_activities) == (9, 9)
    assert (metrics.leased_orchestrations, metrics.visible_inbox_instances) == (4, 9)
    assert (metrics.future_timers, metrics.scheduled_activities) == (1, 11)
    for per_orch, per_act in [(8, 8), (1, 1), (4, 16), (100, 3), (0, 0), (-5, 2)]:
        expected = formula(9, 9, per_orch, per_act)
        assert recommend(pg_server, hub.schema, per_orch, per_act) == expected, (per_orch, per_act)
        assert hub.scale_recommendation(per_orch, per_act) == expected
    assert recommend(pg_server, hub.schema, 8, 8) == 4


def test_future_work_becomes_live_when_due_by_the_server_clock(
    pg_server: pgserver.PgServer, pg_hub: PostgresTaskHub
) -> None:
    start(pg_hub, "soon", start_at=pg_hub.now() + 300_000)  # 0.3 s ahead of the server's clock
    assert recommend(pg_server, pg_hub.schema, 8, 8) == 0
    wait_until(lambda: recommend(pg_server, pg_hub.schema, 8, 8) == 1, timeout=10, what="the start to be due")
