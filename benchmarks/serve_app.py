"""The benchmark's durabletask SDK app (a TaskHubGrpcWorker): ``python -m benchmarks.serve_app PORT [LEVEL]``.

``LEVEL`` (e.g. ``WARNING``) hands the SDK a logger of that level through its public ``logger``
option. Without it the SDK builds its own logger, whose level is unset: every debug line of every work
item is formatted into a record before its handler drops it.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

from durabletask import task, worker


def say_hello(ctx: task.ActivityContext, city: str) -> str:
    return f"Hello {city}!"


def hello_cities(ctx: task.OrchestrationContext, _: Any) -> Any:
    results = []
    for city in ("Tokyo", "Seattle", "London"):
        results.append((yield ctx.call_activity(say_hello, input=city)))
    return results


def fan_out(ctx: task.OrchestrationContext, count: int) -> Any:
    results = yield task.when_all([ctx.call_activity(say_hello, input=str(i)) for i in range(count)])
    return len(results)


if __name__ == "__main__":
    logger = None
    if len(sys.argv) > 2:
        logger = logging.getLogger("durabletask-worker")
        logger.setLevel(sys.argv[2].upper())
        logger.addHandler(logging.StreamHandler())
    w = worker.TaskHubGrpcWorker(host_address=f"localhost:{sys.argv[1]}", logger=logger)
    w.add_orchestrator(hello_cities)
    w.add_orchestrator(fan_out)
    w.add_activity(say_hello)
    w.use_work_item_filters()
    w.start()  # type: ignore[no-untyped-call]
    while True:
        time.sleep(3600)
