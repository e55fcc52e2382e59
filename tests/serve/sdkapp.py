"""A durabletask SDK app (the unmodified PyPI package) for the serve tests.

``python -m tests.serve.sdkapp PORT`` runs it as its own process: a TaskHubGrpcWorker connected to
``dtctl serve`` on PORT, working until killed. ``COUNT_DIR`` (optional) gets one file per activity execution
(and per entity operation run), so tests can count executions.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from durabletask import entities, task, worker


def hello(ctx: task.ActivityContext, name: str) -> str:
    count_dir = os.environ.get("COUNT_DIR")
    if count_dir:
        Path(count_dir, f"{ctx.orchestration_id}.{ctx.task_id}.{uuid.uuid4().hex}").touch()
    delay = float(os.environ.get("ACTIVITY_DELAY", "0"))
    if delay:
        time.sleep(delay)
    return f"Hello {name}!"


def fail(ctx: task.ActivityContext, message: str) -> None:
    raise ValueError(message)


def flaky(ctx: task.ActivityContext, gate: str) -> str:
    """Fails until the file ``gate`` exists (a fix a test applies before rewinding)."""
    if not Path(gate).exists():
        raise RuntimeError(f"{Path(gate).name} is not there yet")
    return "fixed"


def chain(ctx: task.OrchestrationContext, _: Any) -> Any:
    results = []
    for city in ("Tokyo", "Seattle", "London"):
        results.append((yield ctx.call_activity(hello, input=city)))
    return results


def fan_out(ctx: task.OrchestrationContext, count: int) -> Any:
    results = yield task.when_all([ctx.call_activity(hello, input=str(i)) for i in range(count)])
    return len(results)


def approval(ctx: task.OrchestrationContext, timeout_seconds: float) -> Any:
    timer = ctx.create_timer(ctx.current_utc_datetime + timedelta(seconds=timeout_seconds))
    event = ctx.wait_for_external_event("approve")
    winner = yield task.when_any([timer, event])
    return f"approved:{event.get_result()}" if winner == event else "timed out"


def sleeper(ctx: task.OrchestrationContext, seconds: float) -> Any:
    yield ctx.create_timer(ctx.current_utc_datetime + timedelta(seconds=seconds))
    return "woke"


def parent(ctx: task.OrchestrationContext, depth: int) -> Any:
    if depth <= 0:
        return (yield ctx.call_activity(hello, input="leaf"))
    return (yield ctx.call_sub_orchestrator(parent, input=depth - 1))


def failing(ctx: task.OrchestrationContext, _: Any) -> Any:
    yield ctx.call_activity(fail, input="boom")


def counter(ctx: task.OrchestrationContext, n: int) -> Any:
    if n < 5:
        ctx.continue_as_new(n + 1)
        return None
    return n


def waiter(ctx: task.OrchestrationContext, _: Any) -> Any:
    value = yield ctx.wait_for_external_event("go")
    return value


def held(ctx: task.OrchestrationContext, gate: str) -> Any:
    """Holds its first episode's work item until ``gate`` exists (``gate.entered`` says it holds it)."""
    if not ctx.is_replaying:
        Path(f"{gate}.entered").touch()
        while not Path(gate).exists():
            time.sleep(0.01)
    return (yield ctx.call_activity(hello, input="held"))


def rewindable(ctx: task.OrchestrationContext, gate: str) -> Any:
    first = yield ctx.call_activity(hello, input="before")
    second = yield ctx.call_activity(flaky, input=gate)
    return [first, second]


def rewindable_parent(ctx: task.OrchestrationContext, gate: str) -> Any:
    return (yield ctx.call_sub_orchestrator(rewindable, input=gate))


def version_echo(ctx: task.OrchestrationContext, _: Any) -> Any:
    return ctx.version


# --- entities: a function entity, a class entity, and orchestrations that use them ---------------------


def tally(ctx: entities.EntityContext, value: Any) -> Any:
    """A counter. ``add_slow`` holds its batch until the file ``value`` exists (``value.entered`` says
    it is held); with ``COUNT_DIR`` every run of an operation leaves a file there."""
    count_dir = os.environ.get("COUNT_DIR")
    if count_dir:
        Path(count_dir, f"op.{ctx.operation}.{uuid.uuid4().hex}").touch()
    if ctx.operation in ("add", "add_slow"):
        if ctx.operation == "add_slow":
            Path(f"{value}.entered").touch()
            while not Path(value).exists():
                time.sleep(0.01)
        ctx.set_state(ctx.get_state(int, 0) + (1 if ctx.operation == "add_slow" else int(value)))
    elif ctx.operation == "fail":
        raise ValueError(f"tally refuses {value}")
    elif ctx.operation == "crash":
        os._exit(3)  # kills the SDK worker process in the middle of the batch
    return ctx.get_state(int, 0)


class Account(entities.DurableEntity):
    def deposit(self, amount: int) -> int:
        balance = self.get_state(int, 0) + amount
        self.set_state(balance)
        return balance

    def withdraw(self, amount: int) -> int:
        balance = self.get_state(int, 0)
        if amount > balance:
            raise ValueError(f"insufficient funds: {balance} < {amount}")
        self.set_state(balance - amount)
        return balance - amount

    def balance(self, _: Any) -> int:
        return self.get_state(int, 0)

    def notify_tally(self, key: str) -> None:
        self.signal_entity(entities.EntityInstanceId("tally", key), "add", 100)


def entity_calls(ctx: task.OrchestrationContext, key: str) -> Any:
    """Signals and calls a function entity and a class entity; returns what the calls answered."""
    counter = entities.EntityInstanceId("tally", key)
    account = entities.EntityInstanceId("Account", key)
    ctx.signal_entity(counter, "add", 2)
    after = yield ctx.call_entity(counter, "add", 3)
    balance = yield ctx.call_entity(account, "deposit", 50)
    try:
        yield ctx.call_entity(account, "withdraw", 1000)
        refused = None
    except task.TaskFailedError as error:
        refused = str(error)
    return {"after": after, "balance": balance, "refused": refused}


def transfer(ctx: task.OrchestrationContext, spec: dict[str, Any]) -> Any:
    """Moves ``amount`` between two accounts inside a critical section holding both their locks."""
    source = entities.EntityInstanceId("Account", spec["from"])
    target = entities.EntityInstanceId("Account", spec["to"])
    with (yield ctx.lock_entities([source, target])):
        if spec.get("hold"):
            yield ctx.wait_for_external_event("go")
        left = yield ctx.call_entity(source, "withdraw", spec["amount"])
        right = yield ctx.call_entity(target, "deposit", spec["amount"])
    return [left, right]


ENTITIES = (tally, Account)

def crash(ctx: task.ActivityContext, _: Any) -> None:
    """Kills the SDK worker process while it holds this activity (what a segfault in native code does)."""
    os._exit(3)


def crashing(ctx: task.OrchestrationContext, _: Any) -> Any:
    try:
        yield ctx.call_activity(crash)
    except task.TaskFailedError as error:
        return f"failed: {error.details.message}"
    return "ran"


ORCHESTRATORS = (
    crashing,
    entity_calls,
    transfer,
    version_echo,
    chain,
    fan_out,
    approval,
    sleeper,
    parent,
    failing,
    counter,
    waiter,
    held,
    rewindable,
    rewindable_parent,
)
ACTIVITIES = (hello, fail, flaky, crash)


def trace_to_file() -> None:
    """With ``DTCTL_TEST_SPAN_FILE`` set, the SDK's spans go to that file (the SDK traces through the
    global tracer provider when opentelemetry is installed)."""
    if not os.environ.get("DTCTL_TEST_SPAN_FILE"):
        return
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider

    from tests.observe.spanfile import processor

    provider = TracerProvider()
    provider.add_span_processor(processor())
    trace.set_tracer_provider(provider)


def main(port: int) -> None:
    trace_to_file()
    w = worker.TaskHubGrpcWorker(host_address=f"localhost:{port}")
    for fn in ORCHESTRATORS:
        w.add_orchestrator(fn)
    for fn in ACTIVITIES:
        w.add_activity(fn)
    for entity in ENTITIES:
        w.add_entity(entity)
    strict = os.environ.get("STRICT_VERSION")
    if strict:  # this worker runs only instances of exactly that version (its filters say so)
        w.use_versioning(
            worker.VersioningOptions(
                version=strict,
                match_strategy=worker.VersionMatchStrategy.STRICT,
                failure_strategy=worker.VersionFailureStrategy.REJECT,
            )
        )
    if os.environ.get("USE_FILTERS"):
        w.use_work_item_filters()
    w.start()
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main(int(sys.argv[1]))
