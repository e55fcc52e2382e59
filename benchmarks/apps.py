"""The orchestrations and activities the benchmarks run, served by real worker processes.

Workers load this module as ``benchmarks.apps:app``; the harness puts the repository root on their
``PYTHONPATH``.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import dtctl

app = dtctl.App()

CITIES = ("Tokyo", "Seattle", "London")


@app.activity
def say_hello(ctx: dtctl.ActivityContext, city: str) -> str:
    return f"Hello {city}!"


@app.activity
def noop(ctx: dtctl.ActivityContext, n: int) -> int:
    return n


@app.orchestrator
def hello_cities(ctx: dtctl.OrchestrationContext, _: Any) -> Generator[Any, Any, list[str]]:
    """DESIGN §4's hello-cities-3: three activities in sequence."""
    results = []
    for city in CITIES:
        results.append((yield ctx.call_activity(say_hello, input=city)))
    return results


@app.orchestrator
def fan_out(ctx: dtctl.OrchestrationContext, n: int) -> Generator[Any, Any, int]:
    """``n`` no-op activities in parallel, gathered with when_all."""
    results = yield dtctl.when_all([ctx.call_activity(noop, input=i) for i in range(n)])
    return len(results)


@app.orchestrator
def chain(ctx: dtctl.OrchestrationContext, n: int) -> Generator[Any, Any, int]:
    """``n`` no-op activities in sequence."""
    value = 0
    for _ in range(n):
        value = yield ctx.call_activity(noop, input=value + 1)
    return value


@app.orchestrator
def waiter(ctx: dtctl.OrchestrationContext, _: Any) -> Generator[Any, Any, Any]:
    """Stays in flight (RUNNING, cached by its worker) until it receives the event ``go``."""
    return (yield ctx.wait_for_external_event("go"))


@app.orchestrator
def sleeper(ctx: dtctl.OrchestrationContext, micros: int) -> Generator[Any, Any, int]:
    """One durable timer ``micros`` after the start; returns how late it fired (µs, orchestration time)."""
    import datetime

    due = ctx.current_utc_datetime + datetime.timedelta(microseconds=micros)
    yield ctx.create_timer(due)
    late = ctx.current_utc_datetime - due
    return late // datetime.timedelta(microseconds=1)
