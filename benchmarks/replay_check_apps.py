"""Two versions of one app for the replay-check benchmark and tests: ``app_v1`` ran, ``app_v2`` is the deploy.

In v2, ``order`` calls ``ship`` where v1 called ``work`` a second time (after the "go" event): every
instance that got past "go" under v1 recorded ``work`` there and cannot replay on v2; the ones still
waiting for "go", the ones that failed before it, and every ``stable`` instance replay fine.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import dtctl

app_v1 = dtctl.App()
app_v2 = dtctl.App()


def work(ctx: dtctl.ActivityContext, n: int) -> int:
    if n < 0:
        raise ValueError(f"cannot work on {n}")
    return n + 1


def ship(ctx: dtctl.ActivityContext, n: int) -> int:
    return n


def order_v1(ctx: dtctl.OrchestrationContext, n: int) -> Generator[Any, Any, int]:
    a = yield ctx.call_activity("work", input=n)
    yield ctx.wait_for_external_event("go")
    return (yield ctx.call_activity("work", input=a))


def order_v2(ctx: dtctl.OrchestrationContext, n: int) -> Generator[Any, Any, int]:
    a = yield ctx.call_activity("work", input=n)
    yield ctx.wait_for_external_event("go")
    return (yield ctx.call_activity("ship", input=a))


def stable(ctx: dtctl.OrchestrationContext, n: int) -> Generator[Any, Any, int]:
    return (yield ctx.call_activity("work", input=n))


for _app, _order in ((app_v1, order_v1), (app_v2, order_v2)):
    _app.add_activity(work, name="work")
    _app.add_activity(ship, name="ship")
    _app.add_orchestrator(_order, name="order")
    _app.add_orchestrator(stable, name="stable")
