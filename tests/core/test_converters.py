"""The DataConverter seam in the replay engine and the payload module (no worker: see tests/runtime)."""

from __future__ import annotations

from collections.abc import Generator
from decimal import Decimal
from typing import Any

import pytest

import dtctl
from dtctl.core import payload
from dtctl.core.context import OrchestrationContext
from dtctl.core.history import COMPLETED, FAILED
from dtctl.core.replay import execute
from dtctl.errors import PayloadError
from dtctl.testing import HistoryBuilder
from tests.core.support import first_episode, next_episode


class DecimalConverter(dtctl.JsonDataConverter):
    """Decimals travel as JSON strings; everything else as dtctl's codec does it."""

    def __init__(self) -> None:
        self.hints: list[Any] = []

    def serialize(self, value: Any) -> str | None:
        if isinstance(value, Decimal):
            return f'"{value}"'
        return super().serialize(value)

    def deserialize(self, data: str | None, target_type: type | None = None) -> Any:
        self.hints.append(target_type)
        if target_type is Decimal and data is not None:
            return Decimal(payload.decode(data))
        return super().deserialize(data, target_type)


def add_vat(ctx: dtctl.ActivityContext, amount: Decimal) -> Decimal:
    return amount * Decimal("1.2")


def test_the_apps_converter_encodes_and_decodes_every_orchestrator_payload() -> None:
    converter = DecimalConverter()
    app = dtctl.App(data_converter=converter)

    @app.orchestrator
    def invoice(ctx: OrchestrationContext, net: Decimal) -> Generator[dtctl.Task[Any], Any, Decimal]:
        assert isinstance(net, Decimal)
        ctx.set_custom_status(net)
        gross = yield ctx.call_activity(add_vat, input=net)
        extra = yield ctx.wait_for_external_event("extra", data_type=Decimal)
        return gross + extra

    definition = app.get_orchestrator("invoice")
    assert definition is not None
    h = HistoryBuilder(name="invoice", data_converter=converter)
    first = execute(definition, [], first_episode(h, Decimal("10.00")))
    assert first.custom_status == '"10.00"'
    assert first.actions[0].input == '"10.00"'  # type: ignore[union-attr]
    past = h.build()[:2] + list(first.new_history[2:])
    new = next_episode(h).task_completed(0, Decimal("12.000")).event_raised("extra", Decimal("0.5")).take()
    done = execute(definition, past, new)
    assert (done.status, done.output) == (COMPLETED, '"12.500"')
    assert Decimal in converter.hints


def test_a_converter_that_does_not_produce_json_is_refused() -> None:
    class Pickled(dtctl.JsonDataConverter):
        def serialize(self, value: Any) -> str | None:
            return "not json"

    with pytest.raises(PayloadError, match="did not produce JSON"):
        payload.encode({"a": 1}, what="the input", converter=Pickled())


def test_a_converter_error_becomes_a_payload_error_naming_the_payload() -> None:
    class Broken(dtctl.JsonDataConverter):
        def serialize(self, value: Any) -> str | None:
            raise ValueError("boom")

        def deserialize(self, data: str | None, target_type: type | None = None) -> Any:
            raise ValueError("bad data")

    with pytest.raises(PayloadError, match=r"the input of activity 'x'.*boom"):
        payload.encode(1, what="the input of activity 'x'", converter=Broken())
    with pytest.raises(PayloadError, match="Broken: bad data"):
        payload.decode("1", int, converter=Broken())


def test_the_type_is_offered_only_when_the_converter_can_reconstruct_it() -> None:
    seen: list[Any] = []

    class Untyped(dtctl.DataConverter):
        def serialize(self, value: Any) -> str | None:
            return payload.encode(value)

        def deserialize(self, data: str | None, target_type: type | None = None) -> Any:
            seen.append(target_type)
            return payload.decode(data)

        def coerce(self, value: Any, target_type: type | None = None) -> Any:
            return value

    assert payload.decode('{"a":1}', dict, converter=Untyped()) == {"a": 1}
    assert seen == [None]  # DataConverter.can_reconstruct says no by default, as in the SDK


def test_an_unreadable_result_fails_the_task_not_the_episode() -> None:
    class Strict(dtctl.JsonDataConverter):
        def deserialize(self, data: str | None, target_type: type | None = None) -> Any:
            if target_type is Decimal:
                raise ValueError("not a decimal")
            return super().deserialize(data, target_type)

    app = dtctl.App(data_converter=Strict())

    @app.orchestrator
    def caller(ctx: OrchestrationContext, _: Any) -> Generator[dtctl.Task[Any], Any, str]:
        try:
            yield ctx.call_activity(add_vat, input=1)
        except dtctl.TaskFailedError as error:
            return error.details.message
        return "read"

    definition = app.get_orchestrator("caller")
    assert definition is not None
    h = HistoryBuilder(name="caller")
    past = first_episode(h) + h.task_scheduled(0, "add_vat", 1).take()
    done = execute(definition, past, next_episode(h).task_completed(0, "x").take())
    assert done.status == COMPLETED
    assert done.output is not None and "not a decimal" in done.output
    assert done.status != FAILED
