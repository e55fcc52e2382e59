"""Typed payloads through replay: dataclasses rebuilt from annotations, plain data otherwise, clear errors."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from dtctl.core import payload
from dtctl.core.app import App
from dtctl.core.context import ActivityContext, OrchestrationContext
from dtctl.core.history import COMPLETED, FAILED
from dtctl.core.replay import execute
from dtctl.core.task import Task
from dtctl.errors import PayloadError
from tests.core.support import MakeHistory, first_episode, next_episode


@dataclass
class Address:
    city: str
    zip_code: str


@dataclass
class Line:
    sku: str
    quantity: int = 1


@dataclass
class Order:
    id: str
    ship_to: Address
    lines: list[Line] = field(default_factory=list)


@dataclass
class Receipt:
    order_id: str
    total: float


app = App()


@app.activity
def price(ctx: ActivityContext, order: Order) -> Receipt:
    return Receipt(order.id, 1.0)


@app.orchestrator
def place_order(ctx: OrchestrationContext, order: Order) -> Generator[Task[Any], Any, Receipt]:
    assert isinstance(order.ship_to, Address)
    assert all(isinstance(line, Line) for line in order.lines)
    receipt = yield ctx.call_activity(price, input=order)
    assert isinstance(receipt, Receipt)
    return receipt


ORDER = Order("o-1", Address("Lyon", "69001"), [Line("pen", 2), Line("ink")])


def test_dataclass_inputs_and_results_are_rebuilt_from_annotations(make_history: MakeHistory) -> None:
    h = make_history("place_order")
    definition = app.orchestrators["place_order"]
    first = execute(definition, [], first_episode(h, ORDER))
    scheduled = first.actions[0]
    assert payload.decode(getattr(scheduled, "input", None)) == {
        "id": "o-1",
        "ship_to": {"city": "Lyon", "zip_code": "69001"},
        "lines": [{"sku": "pen", "quantity": 2}, {"sku": "ink", "quantity": 1}],
    }
    past = h.build() + list(first.new_history[2:])
    done = execute(definition, past, next_episode(h).task_completed(0, Receipt("o-1", 3.5)).take())
    assert (done.status, done.output) == (COMPLETED, '{"order_id":"o-1","total":3.5}')


def test_without_an_annotation_results_arrive_as_plain_data(make_history: MakeHistory) -> None:
    def by_name(ctx: OrchestrationContext, order: Any) -> Generator[Task[Any], Any, str]:
        assert isinstance(order, dict)
        receipt = yield ctx.call_activity("price", input=order)
        assert isinstance(receipt, dict)
        return type(receipt).__name__

    h = make_history()
    past = first_episode(h, ORDER) + h.task_scheduled(0, "price", ORDER).take()
    done = execute(by_name, past, next_episode(h).task_completed(0, Receipt("o-1", 3.5)).take())
    assert done.output == '"dict"'


def test_names_carried_in_the_data_never_choose_a_type(make_history: MakeHistory) -> None:
    sneaky = {"__class__": "os.system", "__module__": "os", "id": "x"}

    def echo(ctx: OrchestrationContext, data: Any) -> Generator[Task[Any], Any, Any]:
        assert type(data) is dict
        result = yield ctx.call_activity("price", input=data)
        assert type(result) is dict
        return result

    h = make_history()
    past = first_episode(h, sneaky) + h.task_scheduled(0, "price", sneaky).take()
    done = execute(echo, past, next_episode(h).task_completed(0, sneaky).take())
    assert payload.decode(done.output) == sneaky


def test_a_non_serialisable_input_fails_at_the_call_site_naming_the_type(make_history: MakeHistory) -> None:
    class Opaque:
        pass

    def sends_an_object(ctx: OrchestrationContext, _: Any) -> Generator[Task[Any], Any, str]:
        try:
            yield ctx.call_activity("price", input=Opaque())
        except PayloadError as error:
            assert "the input of activity 'price'" in str(error)
            assert "Opaque" in str(error)
        yield ctx.call_activity("price", input={1, 2})
        return "unreachable"

    decision = execute(sends_an_object, [], first_episode(make_history()))
    assert decision.status == FAILED
    assert decision.failure is not None and decision.failure.error_type == "dtctl.errors.PayloadError"
    assert "set is not JSON" in decision.failure.message
    assert decision.actions == ()


@pytest.mark.parametrize(
    "call",
    [
        lambda ctx: ctx.send_event("x", "ping", data=object()),
        lambda ctx: ctx.set_custom_status(object()),
        lambda ctx: ctx.continue_as_new(object()),
        lambda ctx: ctx.call_sub_orchestrator("child", input=object()),
    ],
)
def test_every_payload_is_checked_at_its_call_site(make_history: MakeHistory, call: Any) -> None:
    def orchestrator(ctx: OrchestrationContext, _: Any) -> None:
        call(ctx)

    decision = execute(orchestrator, [], first_episode(make_history()))
    assert decision.failure is not None
    assert "builtins.object is not JSON serializable" in decision.failure.message


@pytest.fixture
def small_limit() -> Iterator[None]:
    before = payload.max_payload_bytes()
    payload.set_max_payload_bytes(64)
    yield
    payload.set_max_payload_bytes(before)


@pytest.mark.usefixtures("small_limit")
def test_a_payload_over_the_limit_is_refused(make_history: MakeHistory) -> None:
    def big(ctx: OrchestrationContext, _: Any) -> Generator[Task[Any], Any, None]:
        yield ctx.call_activity("price", input="x" * 100)

    decision = execute(big, [], first_episode(make_history()))
    assert decision.status == FAILED
    assert decision.failure is not None
    assert (
        "the input of activity 'price' is 102 bytes of JSON, over the limit of 64 bytes"
        in decision.failure.message
    )


def test_event_data_uses_the_requested_type(make_history: MakeHistory) -> None:
    def waits(ctx: OrchestrationContext, _: Any) -> Generator[Task[Any], Any, str]:
        address = yield ctx.wait_for_external_event("moved", data_type=Address)
        assert isinstance(address, Address)
        return address.city

    h = make_history()
    done = execute(
        waits, first_episode(h), next_episode(h).event_raised("moved", Address("Oslo", "0150")).take()
    )
    assert done.output == '"Oslo"'


def test_a_result_that_does_not_fit_its_type_fails_the_task(make_history: MakeHistory) -> None:
    def strict(ctx: OrchestrationContext, _: Any) -> Generator[Task[Any], Any, Any]:
        return (yield ctx.call_activity(price, input=None))

    h = make_history()
    past = first_episode(h) + h.task_scheduled(0, "price").take()
    done = execute(strict, past, next_episode(h).task_completed(0, {"order_id": "x"}).take())
    assert done.status == FAILED
    assert done.failure is not None
    assert "the result of activity 'price' could not be read: cannot build Receipt" in done.failure.message
