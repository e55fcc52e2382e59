"""Durable entities: two bank accounts (a class entity) and a transfer under ``lock_entities``.

The transfer is the classic critical section: both accounts are locked (in one global order, so two
transfers in opposite directions cannot deadlock), the balance is checked and both sides are updated
while no other orchestration can touch either account.

Run it::

    dtctl entity signal @account@alice deposit --data 100
    dtctl start-instance transfer --input '{"source": "alice", "target": "bob", "amount": 30}' --id t1
    dtctl worker samples/entities_bank.py:app --concurrency 2 --burst
    dtctl status t1                   # output {"source": 70, "target": 30}
    dtctl entity list                 # @account@alice 70, @account@bob 30, no lock held
"""

from __future__ import annotations

from typing import Any

import dtctl
from dtctl import entities

app = dtctl.App()


@app.entity
class Account(entities.DurableEntity):
    """A balance that never goes below zero."""

    def deposit(self, amount: int) -> int:
        balance = self.get_state(int, 0) + int(amount)
        self.set_state(balance)
        return balance

    def withdraw(self, amount: int) -> int:
        balance = self.get_state(int, 0)
        if amount > balance:
            raise ValueError(f"insufficient funds: balance {balance}, asked for {amount}")
        self.set_state(balance - int(amount))
        return balance - int(amount)

    def balance(self) -> int:
        return self.get_state(int, 0)


@app.orchestrator
def transfer(ctx: dtctl.OrchestrationContext, order: dict[str, Any]):
    """Move ``amount`` from ``source`` to ``target`` if the source has it; returns both balances."""
    source = entities.EntityInstanceId("account", order["source"])
    target = entities.EntityInstanceId("account", order["target"])
    amount = int(order["amount"])
    with (yield ctx.lock_entities([source, target])):
        available = yield ctx.call_entity(source, "balance")
        if available >= amount:
            yield ctx.call_entity(source, "withdraw", amount)
            yield ctx.call_entity(target, "deposit", amount)
        source_balance = yield ctx.call_entity(source, "balance")
        target_balance = yield ctx.call_entity(target, "balance")
    return {"source": source_balance, "target": target_balance}
