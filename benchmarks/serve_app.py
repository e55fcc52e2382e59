"""The benchmark's durabletask SDK app: ``python -m benchmarks.serve_app PORT`` (a TaskHubGrpcWorker)."""

from __future__ import annotations

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
    w = worker.TaskHubGrpcWorker(host_address=f"localhost:{sys.argv[1]}")
    w.add_orchestrator(hello_cities)
    w.add_orchestrator(fan_out)
    w.add_activity(say_hello)
    w.use_work_item_filters()
    w.start()
    while True:
        time.sleep(3600)
