"""The durabletask SDK's entity examples (examples/entities/*.py), their entity and orchestrator code
as written there with only ``from durabletask import ...`` changed to ``from dtctl import ...``, run
through the replay engine and ``run_entity_batch`` on the dict hub (tests/entities/support.py).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from dtctl import entities, task
from dtctl.core.app import App
from tests.entities.support import COMPLETED, DictHub

# --- class_based_entity.py, class_based_entity_actions.py, entity_locking.py ---------------------------


class Counter(entities.DurableEntity):
    def set(self, input: int):  # type: ignore[no-untyped-def]
        self.set_state(input)

    def add(self, input: int | None = None):  # type: ignore[no-untyped-def]
        current_state = self.get_state(int, 0)
        new_state = current_state + (1 if input is None else input)
        self.set_state(new_state)
        return new_state

    def update_parent(self):  # type: ignore[no-untyped-def]
        parent_entity_id = entities.EntityInstanceId("Counter", "parentCounter")
        if self.entity_context.entity_id == parent_entity_id:
            return  # Prevent self-update
        self.signal_entity(parent_entity_id, "set", self.get_state(int, 0))

    def start_hello(self):  # type: ignore[no-untyped-def]
        self.schedule_new_orchestration("hello_orchestrator")

    def get(self):  # type: ignore[no-untyped-def]
        return self.get_state(int, 0)


def class_counter_orchestrator(ctx: task.OrchestrationContext, _: Any) -> Generator[task.Task[Any], Any, Any]:
    entity_id = task.EntityInstanceId("Counter", "myCounter")
    ctx.signal_entity(entity_id, "set", 0)
    yield ctx.call_entity(entity_id, "add", 1)
    return (yield ctx.call_entity(entity_id, "get"))


def actions_counter_orchestrator(
    ctx: task.OrchestrationContext, _: Any
) -> Generator[task.Task[Any], Any, Any]:
    entity_id = task.EntityInstanceId("Counter", "myCounter")
    parent_entity_id = task.EntityInstanceId("Counter", "parentCounter")
    ctx.signal_entity(entity_id, "start_hello")
    ctx.signal_entity(entity_id, "set", 0)
    yield ctx.call_entity(entity_id, "add", 1)
    yield ctx.call_entity(entity_id, "update_parent")
    return (yield ctx.call_entity(parent_entity_id, "get"))


def hello_orchestrator(ctx: task.OrchestrationContext, _: Any) -> str:
    return "Hello world!"


def locking_counter_orchestrator(
    ctx: task.OrchestrationContext, _: Any
) -> Generator[task.Task[Any], Any, Any]:
    entity_id = entities.EntityInstanceId("Counter", "myCounter")
    with (yield ctx.lock_entities([entity_id])):
        yield ctx.call_entity(entity_id, "set", 0)
        yield ctx.call_entity(entity_id, "add", 1)
        result = yield ctx.call_entity(entity_id, "get")
    return result


# --- function_based_entity.py, function_based_entity_actions.py ----------------------------------------


def counter(ctx: entities.EntityContext, input: int | None = None) -> int | None:
    if ctx.operation == "set":
        ctx.set_state(input)
    elif ctx.operation == "add":
        current_state = ctx.get_state(int, 0)
        new_state = current_state + (1 if input is None else input)
        ctx.set_state(new_state)
        return new_state
    elif ctx.operation == "get":
        return ctx.get_state(int, 0)
    elif ctx.operation == "update_parent":
        parent_entity_id = entities.EntityInstanceId("counter", "parentCounter")
        if ctx.entity_id == parent_entity_id:
            return None  # Prevent self-update
        ctx.signal_entity(parent_entity_id, "set", ctx.get_state(int, 0))
    elif ctx.operation == "start_hello":
        ctx.schedule_new_orchestration("hello_orchestrator")
    else:
        raise ValueError(f"Unknown operation '{ctx.operation}'")
    return None


def function_counter_orchestrator(
    ctx: task.OrchestrationContext, _: Any
) -> Generator[task.Task[Any], Any, Any]:
    entity_id = entities.EntityInstanceId("counter", "myCounter")
    ctx.signal_entity(entity_id, "set", 0)
    yield ctx.call_entity(entity_id, "add", 1)
    return (yield ctx.call_entity(entity_id, "get"))


def _run(entity: Any, orchestrator: Any, seed: int) -> tuple[DictHub, str]:
    app = App()
    app.add_entity(entity)
    app.add_orchestrator(orchestrator)
    app.add_orchestrator(hello_orchestrator)
    hub = DictHub(app, seed=seed)
    instance_id = hub.start(orchestrator.__name__)
    hub.run()
    assert hub.instances[instance_id].status == COMPLETED, hub.instances[instance_id].failure
    return hub, instance_id


def test_class_based_entity() -> None:
    for seed in range(5):
        hub, instance_id = _run(Counter, class_counter_orchestrator, seed)
        assert hub.output_of(instance_id) == 1
        assert hub.state_of("@counter@myCounter") == 1


def test_class_based_entity_actions() -> None:
    for seed in range(5):
        hub, instance_id = _run(Counter, actions_counter_orchestrator, seed)
        assert hub.output_of(instance_id) == 1
        assert hub.state_of("@counter@parentCounter") == 1
        started = [i for key, i in hub.instances.items() if key != instance_id]
        assert [
            (i.name, i.status, hub.output_of(key)) for key, i in hub.instances.items() if key != instance_id
        ] == [("hello_orchestrator", COMPLETED, "Hello world!")]
        assert len(started) == 1


def test_entity_locking() -> None:
    for seed in range(5):
        hub, instance_id = _run(Counter, locking_counter_orchestrator, seed)
        assert hub.output_of(instance_id) == 1
        assert hub.entities["@counter@myCounter"].lock is None


def test_function_based_entity() -> None:
    for seed in range(5):
        hub, instance_id = _run(counter, function_counter_orchestrator, seed)
        assert hub.output_of(instance_id) == 1


def test_function_based_entity_actions() -> None:
    def orchestrator(ctx: task.OrchestrationContext, _: Any) -> Generator[task.Task[Any], Any, Any]:
        entity_id = task.EntityInstanceId("counter", "myCounter")
        parent_entity_id = task.EntityInstanceId("counter", "parentCounter")
        ctx.signal_entity(entity_id, "start_hello")
        ctx.signal_entity(entity_id, "set", 0)
        yield ctx.call_entity(entity_id, "add", 1)
        yield ctx.call_entity(entity_id, "update_parent")
        return (yield ctx.call_entity(parent_entity_id, "get"))

    for seed in range(5):
        hub, instance_id = _run(counter, orchestrator, seed)
        assert hub.output_of(instance_id) == 1
        assert {i.name for i in hub.instances.values()} == {"orchestrator", "hello_orchestrator"}
