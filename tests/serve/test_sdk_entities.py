"""SDK entities run by SDK workers through serve: signals, calls and critical sections, on both hubs.

The unmodified durabletask SDK is the worker (``tests.serve.sdkapp``: a function entity ``tally`` and a
class entity ``Account``) and the client; entity state is read back through the SDK's GetEntity and
through ``dtctl entity``, as an operator would.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from durabletask import client
from durabletask.entities import EntityInstanceId

from tests.helpers import dtctl, json_out, wait_until
from tests.serve.harness import Serve

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def c(served: Serve) -> client.TaskHubGrpcClient:
    return client.TaskHubGrpcClient(host_address=served.address)


def _key() -> str:
    return uuid.uuid4().hex[:8]


def _state(c: client.TaskHubGrpcClient, entity: EntityInstanceId) -> Any:
    found = c.get_entity(entity)
    raw = None if found is None else found.get_state()
    return json.loads(raw) if raw else None


def _finish(c: client.TaskHubGrpcClient, name: str, data: Any) -> Any:
    instance_id = c.schedule_new_orchestration(name, input=data)
    state = c.wait_for_orchestration_completion(instance_id, timeout=90)
    assert state is not None
    assert state.runtime_status == client.OrchestrationStatus.COMPLETED, state.failure_details
    return json.loads(state.serialized_output or "null")


def test_client_signals_a_function_entity(served: Serve, c: client.TaskHubGrpcClient) -> None:
    entity = EntityInstanceId("tally", _key())
    for amount in (1, 2, 3, 4):
        c.signal_entity(entity, "add", input=amount)
    wait_until(lambda: _state(c, entity) == 10, timeout=60, what="four signals applied")
    shown = json_out(dtctl("--hub", served.hub, "entity", "show", str(entity), "--json"))
    assert shown["state"] == 10
    assert shown["backlog"] == 0 and shown["locked_by"] is None


def test_orchestration_signals_and_calls_entities(c: client.TaskHubGrpcClient) -> None:
    key = _key()
    out = _finish(c, "entity_calls", key)
    assert out["after"] == 5  # the signal (2) was applied before the call (3): one sender, FIFO
    assert out["balance"] == 50
    assert "insufficient funds" in out["refused"]
    assert _state(c, EntityInstanceId("tally", key)) == 5
    assert _state(c, EntityInstanceId("account", key)) == 50  # the failed withdraw changed nothing


def test_an_entity_signals_another_entity(c: client.TaskHubGrpcClient) -> None:
    key = _key()
    c.signal_entity(EntityInstanceId("account", key), "notify_tally", input=key)
    wait_until(
        lambda: _state(c, EntityInstanceId("tally", key)) == 100, timeout=60, what="the entity's signal"
    )


def test_critical_section_holds_both_locks(served: Serve, c: client.TaskHubGrpcClient) -> None:
    a, b = EntityInstanceId("account", _key()), EntityInstanceId("account", _key())
    c.signal_entity(a, "deposit", input=100)
    wait_until(lambda: _state(c, a) == 100, timeout=60, what="the first deposit")
    holder = c.schedule_new_orchestration(
        "transfer", input={"from": a.key, "to": b.key, "amount": 30, "hold": True}
    )

    def locked_by() -> list[str | None]:
        shown = [json_out(dtctl("--hub", served.hub, "entity", "show", str(e), "--json")) for e in (a, b)]
        return [(s["locked_by"] or {}).get("instance_id") for s in shown]

    wait_until(lambda: locked_by() == [holder, holder], timeout=60, what="both locks held")
    c.signal_entity(a, "deposit", input=1)  # waits behind the lock: the transfer sees 100, not 101
    c.raise_orchestration_event(holder, "go")
    state = c.wait_for_orchestration_completion(holder, timeout=90)
    assert state is not None and state.runtime_status == client.OrchestrationStatus.COMPLETED
    assert json.loads(state.serialized_output or "") == [70, 30]
    wait_until(lambda: _state(c, a) == 71, timeout=60, what="the waiting deposit after the unlock")
    assert _state(c, b) == 30
    assert locked_by() == [None, None]
    found = c.get_entity(a)
    assert found is not None and found.backlog_queue_size == 0
