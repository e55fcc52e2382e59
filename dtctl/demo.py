"""The app behind ``dtctl demo``: hello-cities, the function-chaining sample, shipped in the package."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from dtctl.core.app import App
from dtctl.core.context import ActivityContext, OrchestrationContext

app = App()


@app.activity
def say_hello(ctx: ActivityContext, city: str) -> str:
    return f"Hello {city}!"


@app.orchestrator
def hello_cities(ctx: OrchestrationContext, _: Any) -> Generator[Any, Any, list[str]]:
    results: list[str] = []
    for city in ["Tokyo", "Seattle", "London"]:
        results.append((yield ctx.call_activity(say_hello, input=city)))
    return results
