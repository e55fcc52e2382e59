"""An app whose every payload is a pydantic model, to prove each path goes through its data converter.

``wallet`` takes a ``Money``, shows it as custom status, doubles it with an activity (input and result),
continues as new with the doubled amount until it reaches 10.00, then hands it to a sub-orchestration
that waits for a ``bonus`` event (a ``Money`` too) and returns the sum. Plain JSON data would fail the
``isinstance`` checks, so a payload that skipped the converter fails the orchestration.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from pydantic import BaseModel, Field

import dtctl
from tests.apps.custom_data_converter.converter import PydanticDataConverter

app = dtctl.App(data_converter=PydanticDataConverter())


class Money(BaseModel):
    cents: int = Field(ge=0)
    currency: str


def _check(value: Any) -> Money:
    if not isinstance(value, Money):
        raise TypeError(f"expected Money, got {type(value).__name__}")
    return value


@app.activity
def double(ctx: dtctl.ActivityContext, amount: Money) -> Money:
    return Money(cents=_check(amount).cents * 2, currency=amount.currency)


@app.orchestrator
def add_bonus(ctx: dtctl.OrchestrationContext, amount: Money) -> Generator[dtctl.Task[Any], Any, Money]:
    bonus = _check((yield ctx.wait_for_external_event("bonus", data_type=Money)))
    return Money(cents=_check(amount).cents + bonus.cents, currency=amount.currency)


@app.orchestrator
def wallet(ctx: dtctl.OrchestrationContext, amount: Money) -> Generator[dtctl.Task[Any], Any, Money | None]:
    ctx.set_custom_status(_check(amount))
    doubled = _check((yield ctx.call_activity(double, input=amount)))
    if doubled.cents < 1000:
        ctx.continue_as_new(doubled)
        return None
    total = yield ctx.call_sub_orchestrator(add_bonus, input=doubled, return_type=Money)
    return _check(total)
