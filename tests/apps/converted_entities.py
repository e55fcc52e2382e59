"""Entities whose every payload is a pydantic model, to prove each entity path goes through the app's
data converter: state (``get_state(Money)`` must give a ``Money``), operation inputs and results, the
signals and orchestrations an operation sends, and ``call_entity`` from an orchestration
(``return_type=Money``). Plain JSON data fails the ``isinstance`` checks, so a payload that skipped the
converter fails the operation or the orchestration.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import dtctl
from dtctl import entities
from tests.apps.converted_wallet import Money
from tests.apps.custom_data_converter.converter import PydanticDataConverter

app = dtctl.App(data_converter=PydanticDataConverter())


def _check(value: Any) -> Money:
    if not isinstance(value, Money):
        raise TypeError(f"expected Money, got {type(value).__name__}")
    return value


@app.entity
def purse(ctx: entities.EntityContext, amount: Money) -> Money:
    """``add`` a Money (and forward a tenth of it to the vault as a signal), ``get`` the balance."""
    balance = _check(ctx.get_state(Money, Money(cents=0, currency="EUR")))
    if ctx.operation == "add":
        added = _check(amount)
        balance = Money(cents=balance.cents + added.cents, currency=added.currency)
        ctx.set_state(balance)
        tithe = Money(cents=added.cents // 10, currency=added.currency)
        ctx.signal_entity(entities.EntityInstanceId("Vault", ctx.entity_id.key), "deposit", tithe)
        if balance.cents >= 1000:
            ctx.schedule_new_orchestration(
                "receipt", input=balance, instance_id=f"receipt-{ctx.entity_id.key}"
            )
    return balance


@app.entity
class Vault(entities.DurableEntity):
    def deposit(self, amount: Money) -> Money:
        held = _check(self.get_state(Money, Money(cents=0, currency="EUR")))
        total = Money(cents=held.cents + _check(amount).cents, currency=amount.currency)
        self.set_state(total)
        return total


@app.orchestrator
def receipt(ctx: dtctl.OrchestrationContext, balance: Money) -> Money:
    return _check(balance)


@app.orchestrator
def fill_purse(ctx: dtctl.OrchestrationContext, key: str) -> Generator[dtctl.Task[Any], Any, Money]:
    """Adds 4.00 three times by ``call_entity`` (each result a Money), then reads the vault under a lock."""
    purse_id = entities.EntityInstanceId("purse", key)
    last = Money(cents=0, currency="EUR")
    for _ in range(3):
        last = _check(
            (yield ctx.call_entity(purse_id, "add", Money(cents=400, currency="EUR"), return_type=Money))
        )
    vault_id = entities.EntityInstanceId("Vault", key)
    with (yield ctx.lock_entities([vault_id])):
        _check(
            (yield ctx.call_entity(vault_id, "deposit", Money(cents=0, currency="EUR"), return_type=Money))
        )
    return last
