"""Concurrent transfers under locks on the dict hub, in many random interleavings: no deadlock (the
global lock order), the total balance is conserved, every transfer finishes and no lock is left held."""

from __future__ import annotations

import random
from collections.abc import Generator
from typing import Any

import pytest

from dtctl import entities
from dtctl.core.app import App
from dtctl.core.context import OrchestrationContext
from dtctl.core.task import Task, TaskFailedError
from tests.entities.support import COMPLETED, DictHub


class Account(entities.DurableEntity):
    def deposit(self, amount: int) -> None:
        self.set_state(self.get_state(int, 0) + amount)

    def withdraw(self, amount: int) -> None:
        balance = self.get_state(int, 0)
        if amount > balance:
            raise ValueError("insufficient funds")
        self.set_state(balance - amount)

    def get(self) -> int:
        return self.get_state(int, 0)


def transfer(ctx: OrchestrationContext, t: dict[str, Any]) -> Generator[Task[Any], Any, str]:
    a = entities.EntityInstanceId("Account", t["from"])
    b = entities.EntityInstanceId("Account", t["to"])
    with (yield ctx.lock_entities([a, b])):
        try:
            yield ctx.call_entity(a, "withdraw", t["amount"])
        except TaskFailedError:
            return "declined"
        yield ctx.call_entity(b, "deposit", t["amount"])
    return "moved"


@pytest.mark.parametrize("seed", range(8))
def test_transfers_under_locks_conserve_the_total(seed: int) -> None:
    app = App()
    app.add_entity(Account)
    app.add_orchestrator(transfer)
    hub = DictHub(app, seed=seed, batch=3)
    names = [f"acct{n}" for n in range(5)]
    for name in names:
        hub.signal(entities.EntityInstanceId("Account", name), "deposit", 100)
    pick = random.Random(seed)
    ids = []
    for _ in range(40):
        src, dst = pick.sample(names, 2)
        ids.append(hub.start("transfer", {"from": src, "to": dst, "amount": pick.randint(1, 80)}))
    hub.run()
    assert all(hub.instances[i].status == COMPLETED for i in ids)
    assert {hub.output_of(i) for i in ids} <= {"moved", "declined"}
    assert sum(hub.state_of(f"@account@{name}") for name in names) == 500
    assert all(e.lock is None and not e.inbox for e in hub.entities.values())
