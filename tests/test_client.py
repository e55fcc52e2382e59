"""TaskHubClient: the happy paths and every error a caller can meet."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dtctl.client import StartRequest, TaskHubClient
from dtctl.core.history import COMPLETED, PENDING, TERMINATED, EventRaised
from dtctl.errors import (
    InstanceAlreadyExists,
    InstanceNotFound,
    InvalidState,
    PayloadError,
    UsageError,
    WaitTimeout,
)
from dtctl.hub import open_hub
from dtctl.hub.base import InstanceQuery, TerminateOutcome
from tests.hub.conftest import StepClock
from tests.hub.hub_helpers import step


@pytest.fixture
def hub_path(tmp_path: Path) -> Path:
    path = tmp_path / "taskhub.db"
    open_hub(path, create=True).close()
    return path


@pytest.fixture
def client(hub_path: Path, clock: StepClock) -> Iterator[TaskHubClient]:
    opened = TaskHubClient(open_hub(hub_path, clock=clock))
    yield opened
    opened.close()


@pytest.fixture
def clock() -> StepClock:
    return StepClock()


def greet(ctx: object, name: str) -> str:  # an orchestrator function, used by name
    return f"hi {name}"


@dataclass
class Order:
    item: str
    qty: int


# --- starting -------------------------------------------------------------------------------------


def test_start_instance_by_function_encodes_the_input(client: TaskHubClient) -> None:
    instance_id = client.start_instance(greet, input=Order("tea", 2))
    assert len(instance_id) == 32
    state = client.get_instance(instance_id)
    assert state is not None
    assert (state.name, state.status, state.input) == ("greet", PENDING, '{"item":"tea","qty":2}')


def test_start_instance_with_id_start_time_and_if_exists(client: TaskHubClient) -> None:
    at = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert client.start_instance("greet", instance_id="order-1", start_at=at) == "order-1"
    state = client.get_instance("order-1")
    assert state is not None and state.scheduled_start == int(at.timestamp() * 1_000_000)
    with pytest.raises(InstanceAlreadyExists):
        client.start_instance("greet", instance_id="order-1")
    assert client.start_instance("greet", instance_id="order-1", if_exists="skip") == "order-1"
    with pytest.raises(UsageError):
        client.start_instance("greet", instance_id="")


def test_start_instances_in_one_batch(client: TaskHubClient) -> None:
    ids = client.start_instances(
        [("greet", "a", "b-1"), StartRequest("greet", input=[1, 2], instance_id="b-2"), ("greet", None)]
    )
    assert ids[:2] == ["b-1", "b-2"] and len(ids[2]) == 32
    assert [client.get_instance(i).input for i in ids] == ['"a"', "[1,2]", None]  # type: ignore[union-attr]
    with pytest.raises(InstanceAlreadyExists):
        client.start_instances([("greet", None, "b-3"), ("greet", None, "b-1")])
    assert client.get_instance("b-3") is None  # all or nothing


def test_non_json_input_stores_nothing(client: TaskHubClient) -> None:
    with pytest.raises(PayloadError, match=r"the input of 'greet'.*set"):
        client.start_instance("greet", input={1, 2}, instance_id="bad")
    with pytest.raises(PayloadError, match="object"):
        client.start_instances([("greet", None, "ok"), ("greet", object(), "bad")])
    assert client.list_instances().instances == []


def test_client_opens_a_path_or_the_environment(hub_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with TaskHubClient(hub_path) as by_path:
        instance_id = by_path.start_instance("greet")
    monkeypatch.setenv("DTCTL_HUB", str(hub_path))
    with TaskHubClient() as from_env:
        assert from_env.get_instance(instance_id) is not None


# --- messages -------------------------------------------------------------------------------------


def test_raise_event(client: TaskHubClient) -> None:
    client.start_instance("greet", instance_id="a")
    client.raise_event("a", "approval", {"ok": True})
    events = [m.event for m in client.hub.pending_messages("a")]
    assert isinstance(events[-1], EventRaised) and events[-1].input == '{"ok":true}'
    with pytest.raises(PayloadError, match="approval"):
        client.raise_event("a", "approval", {1})
    assert len(client.hub.pending_messages("a")) == 2


def test_raise_event_on_a_missing_instance(client: TaskHubClient) -> None:
    with pytest.raises(InstanceNotFound, match="no instance 'ghost'"):
        client.raise_event("ghost", "e")


def test_raise_event_on_a_completed_instance(client: TaskHubClient) -> None:
    client.start_instance("greet", instance_id="a")
    step(client.hub, "a", COMPLETED, output='"done"')
    with pytest.raises(InvalidState, match="COMPLETED"):
        client.raise_event("a", "e", 1)
    client.raise_event("a", "e", 1, force=True)


def test_terminate(client: TaskHubClient) -> None:
    client.start_instance("greet", instance_id="a")
    assert client.terminate("a", "stop") == TerminateOutcome("a", True, TERMINATED)
    assert client.terminate("a") == TerminateOutcome("a", False, TERMINATED)
    with pytest.raises(InstanceNotFound):
        client.terminate("ghost")


def test_terminate_a_completed_instance_says_so(client: TaskHubClient) -> None:
    client.start_instance("greet", instance_id="a")
    step(client.hub, "a", COMPLETED)
    assert client.terminate("a", "too late") == TerminateOutcome("a", False, COMPLETED)


def test_suspend_and_resume(client: TaskHubClient) -> None:
    client.start_instance("greet", instance_id="a")
    client.suspend("a", "wait")
    client.resume("a")
    kinds = [m.event.kind for m in client.hub.pending_messages("a")]
    assert kinds == ["execution_started", "execution_suspended", "execution_resumed"]
    with pytest.raises(InstanceNotFound):
        client.suspend("ghost")
    step(client.hub, "a", COMPLETED)
    with pytest.raises(InvalidState):
        client.resume("a")


# --- reading --------------------------------------------------------------------------------------


def test_get_list_and_history(client: TaskHubClient, clock: StepClock) -> None:
    client.start_instance("greet", instance_id="a", input="x")
    clock.advance(1)
    client.start_instance("other", instance_id="b")
    assert client.get_instance("ghost") is None
    with pytest.raises(InstanceNotFound):
        client.get_instance_or_raise("ghost")
    assert [s.instance_id for s in client.list_instances().instances] == ["b", "a"]
    assert [s.instance_id for s in client.list_instances(name="greet").instances] == ["a"]
    assert [s.instance_id for s in client.list_instances(InstanceQuery(prefix="b")).instances] == ["b"]
    after = datetime.fromtimestamp((clock() - 500_000) / 1e6, tz=UTC)
    assert [s.instance_id for s in client.list_instances(created_after=after).instances] == ["b"]
    step(client.hub, "a")
    assert [r.event.kind for r in client.get_history("a")] == ["orchestrator_started", "execution_started"]
    with pytest.raises(InstanceNotFound):
        client.get_history("ghost")
    assert client.scale_metrics().live_orchestrations == 1


def test_wait_for_completion_returns_the_final_state(client: TaskHubClient, hub_path: Path) -> None:
    client.start_instance("greet", instance_id="a")

    def finish() -> None:  # another worker, on its own connection
        other = open_hub(hub_path)
        try:
            step(other, "a", COMPLETED, output='"hi"')
        finally:
            other.close()

    worker = threading.Thread(target=finish)
    worker.start()
    state = client.wait_for_completion("a", timeout=30)
    worker.join()
    assert (state.status, state.output) == (COMPLETED, '"hi"')


def test_wait_for_completion_errors(client: TaskHubClient) -> None:
    with pytest.raises(InstanceNotFound):
        client.wait_for_completion("ghost", timeout=1)
    client.start_instance("greet", instance_id="a")
    with pytest.raises(WaitTimeout, match="still PENDING") as caught:
        client.wait_for_completion("a", timeout=0.05)
    assert caught.value.exit_code == 6


def test_purge(client: TaskHubClient) -> None:
    client.start_instances([("greet", None, "a"), ("greet", None, "b"), ("greet", None, "c")])
    step(client.hub, "a", COMPLETED)
    client.terminate("b")
    assert client.purge(["a", "c"]) == 1
    assert client.purge(statuses=[TERMINATED]) == 1
    assert [s.instance_id for s in client.list_instances().instances] == ["c"]
    with pytest.raises(UsageError):
        client.purge(statuses=["RUNNING"])


def test_decode_payloads(client: TaskHubClient) -> None:
    client.start_instance("greet", instance_id="a", input=Order("tea", 2))
    step(client.hub, "a", COMPLETED, output='{"item":"cake","qty":1}', custom_status='"baking"')
    state = client.get_instance_or_raise("a")
    assert client.decode_output(state, Order) == Order("cake", 1)
    assert client.decode_output(state) == {"item": "cake", "qty": 1}
    assert client.decode_input(state, Order) == Order("tea", 2)
    assert client.decode_custom_status(state) == "baking"
