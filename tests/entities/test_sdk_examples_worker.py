"""The durabletask SDK's entity examples (examples/entities/*.py) on a real worker loop and SQLite hub.

The entity and orchestrator code is the SDK examples' (as kept, imports changed, in test_sdk_examples.py);
here it runs the way the examples run it — a worker with the entity and orchestrators registered, a
client that schedules the orchestration and waits — through tests/entities/sdk (the SDK's worker and
client names over a dtctl hub), instead of on the dict hub.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from dtctl.client import TaskHubClient
from tests.entities import sdk
from tests.entities import test_sdk_examples as examples
from tests.entities.sdk import client, find_free_port, worker
from tests.entities.sdk.testing import create_test_backend

PORT = find_free_port()
HOST = f"localhost:{PORT}"


@pytest.fixture(autouse=True)
def backend() -> Iterator[None]:
    b = create_test_backend(port=PORT)
    yield
    b.stop()
    b.reset()


def _run_example(entity: Any, orchestrator: Callable[..., Any]) -> tuple[Any, client.TaskHubGrpcClient]:
    with worker.TaskHubGrpcWorker(host_address=HOST) as w:
        w.add_orchestrator(orchestrator)
        w.add_orchestrator(examples.hello_orchestrator)
        w.add_entity(entity)
        w.start()
        c = client.TaskHubGrpcClient(host_address=HOST)
        instance_id = c.schedule_new_orchestration(orchestrator)
        state = c.wait_for_orchestration_completion(instance_id, timeout=60)
        c.wait_until_idle()
    return state, c


@pytest.mark.parametrize(
    ("entity", "orchestrator"),
    [
        (examples.Counter, examples.class_counter_orchestrator),  # class_based_entity.py
        (examples.Counter, examples.actions_counter_orchestrator),  # class_based_entity_actions.py
        (examples.Counter, examples.locking_counter_orchestrator),  # entity_locking.py
        (examples.counter, examples.function_counter_orchestrator),  # function_based_entity.py
    ],
)
def test_sdk_example_on_a_real_worker(entity: Any, orchestrator: Callable[..., Any]) -> None:
    state, c = _run_example(entity, orchestrator)
    try:
        assert state.runtime_status == client.OrchestrationStatus.COMPLETED, state.failure_details
        assert state.serialized_output == "1"
        counter = c.get_entity(examples.entities.EntityInstanceId("counter", "myCounter"))
        assert counter is not None and counter.get_state(int) == 1 and counter.locked_by is None
    finally:
        c.close()


def test_sdk_example_entity_actions_start_an_orchestration() -> None:
    """function_based_entity_actions.py: the entity starts hello_orchestrator and signals its parent."""

    def orchestrator(ctx: Any, _: Any) -> Any:
        entity_id = examples.task.EntityInstanceId("counter", "myCounter")
        parent_entity_id = examples.task.EntityInstanceId("counter", "parentCounter")
        ctx.signal_entity(entity_id, "start_hello")
        ctx.signal_entity(entity_id, "set", 0)
        yield ctx.call_entity(entity_id, "add", 1)
        yield ctx.call_entity(entity_id, "update_parent")
        return (yield ctx.call_entity(parent_entity_id, "get"))

    state, c = _run_example(examples.counter, orchestrator)
    try:
        assert state.serialized_output == "1"
        parent = c.get_entity(examples.entities.EntityInstanceId("counter", "parentCounter"))
        assert parent is not None and parent.get_state(int) == 1
    finally:
        c.close()
    with TaskHubClient(str(sdk.hub_for(HOST))) as reader:
        started = [
            i
            for i in reader.list_instances(include_payloads=True).instances
            if i.name == "hello_orchestrator"
        ]
        assert [(i.status, reader.decode_output(i)) for i in started] == [("COMPLETED", "Hello world!")]
