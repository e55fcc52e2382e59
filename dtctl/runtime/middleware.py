"""Middleware around orchestration episodes and activity executions (``app.use(...)``).

As in DTFx's dispatch pipeline, a middleware is a callable ``mw(work, call_next)`` that does what it
likes before and after ``call_next()`` and returns its result: logging, tracing, metrics::

    @app.use
    def timing(work: WorkContext, call_next):
        started = time.perf_counter()
        try:
            return call_next()
        finally:
            log.info("%s %s took %.1f ms", work.kind, work.name, 1000 * (time.perf_counter() - started))

An exception a middleware raises around an activity fails that activity; around an episode it
abandons the work item (it is retried, and failed as poison after the dequeue limit).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

T = TypeVar("T")

Middleware = Callable[["WorkContext", Callable[[], Any]], Any]


@dataclass(frozen=True, slots=True)
class WorkContext:
    kind: Literal["orchestration", "activity"]
    name: str
    instance_id: str
    task_id: int | None
    dequeue_count: int


def run_with_middleware(chain: Sequence[Middleware], work: WorkContext, call: Callable[[], T]) -> T:
    if not chain:
        return call()

    def step(index: int) -> Any:
        if index == len(chain):
            return call()
        return chain[index](work, lambda: step(index + 1))

    result: T = step(0)
    return result
