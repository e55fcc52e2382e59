"""An app for the entity tests: a counter, bank accounts, and orchestrations that call and lock them."""

from __future__ import annotations

import os
from typing import Any

import dtctl
from dtctl import entities

app = dtctl.App()


@app.entity
def counter(ctx: entities.EntityContext, input: Any = None) -> Any:
    if ctx.operation == "add":
        value = ctx.get_state(int, 0) + int(input)
        ctx.set_state(value)
        return value
    if ctx.operation == "get":
        return ctx.get_state(int, 0)
    if ctx.operation == "fail":
        ctx.set_state(-1)  # rolled back: the operation raises
        raise ValueError("asked to fail")
    if ctx.operation == "crash":
        os._exit(3)  # kills the worker process in the middle of the batch
    if ctx.operation == "delete":
        ctx.delete_state()
        return None
    raise ValueError(f"no operation {ctx.operation!r}")


@app.entity
class Account(entities.DurableEntity):
    def deposit(self, amount: int) -> int:
        balance = self.get_state(int, 0) + amount
        self.set_state(balance)
        return balance

    def withdraw(self, amount: int) -> int:
        balance = self.get_state(int, 0)
        if amount > balance:
            raise ValueError(f"insufficient funds: {balance} < {amount}")
        self.set_state(balance - amount)
        return balance - amount

    def balance(self) -> int:
        return self.get_state(int, 0)


@app.orchestrator
def add_calls(ctx: dtctl.OrchestrationContext, job: dict[str, Any]):
    """Calls ``add 1`` on the counter ``job["count"]`` times, one after another."""
    target = entities.EntityInstanceId("counter", job["key"])
    last = None
    for _ in range(job["count"]):
        last = yield ctx.call_entity(target, "add", 1)
    return last


@app.orchestrator
def call_then_fail(ctx: dtctl.OrchestrationContext, key: str):
    """A failed operation raises in the caller; its state change is rolled back."""
    target = entities.EntityInstanceId("counter", key)
    yield ctx.call_entity(target, "add", 5)
    try:
        yield ctx.call_entity(target, "fail")
    except dtctl.TaskFailedError as error:
        return {"failed": error.details.message, "value": (yield ctx.call_entity(target, "get"))}
    return {"failed": None}


@app.orchestrator
def call_crash(ctx: dtctl.OrchestrationContext, key: str):
    """Calls an operation that kills every worker that runs it: it must come back as a poison failure."""
    try:
        yield ctx.call_entity(entities.EntityInstanceId("counter", key), "crash")
    except dtctl.TaskFailedError as error:
        return error.details.message
    return "no failure"


@app.orchestrator
def transfer(ctx: dtctl.OrchestrationContext, order: dict[str, Any]):
    source = entities.EntityInstanceId("account", order["source"])
    target = entities.EntityInstanceId("account", order["target"])
    with (yield ctx.lock_entities([source, target])):
        balance = yield ctx.call_entity(source, "balance")
        if balance < order["amount"]:
            return "refused"
        yield ctx.call_entity(source, "withdraw", order["amount"])
        yield ctx.call_entity(target, "deposit", order["amount"])
    return "moved"


@app.orchestrator
def hold_lock(ctx: dtctl.OrchestrationContext, key: str):
    """Locks a counter, then waits for an event inside the critical section."""
    target = entities.EntityInstanceId("counter", key)
    with (yield ctx.lock_entities([target])):
        yield ctx.wait_for_external_event("go")
        return (yield ctx.call_entity(target, "add", 1))
