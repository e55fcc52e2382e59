"""run_entity_batch: FIFO, lock queueing and forwarding, rollback of a failed operation, delete,
messages an entity sends; and the SDK's entity executor and entity id scenarios, in our own words."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from dtctl.core import payload
from dtctl.core.entity import DurableEntity, EntityContext
from dtctl.core.entity_exec import (
    EntityMessage,
    ForwardLock,
    LockGranted,
    LockHolder,
    MessageKind,
    OperationResponse,
    SendSignal,
    StartOrchestration,
    run_entity_batch,
)
from dtctl.core.entity_id import EntityInstanceId

ACCOUNT = EntityInstanceId("Account", "a")
NOW = 1_700_000_000_000_000


def account(ctx: EntityContext, amount: int | None) -> int:
    balance = ctx.get_state(int, 0)
    if ctx.operation == "deposit":
        ctx.set_state(balance + (amount or 0))
    elif ctx.operation == "withdraw":
        ctx.set_state(balance - (amount or 0))
        ctx.signal_entity("@audit@log", "record", amount)  # dropped with the rollback if the check fails
        if balance < (amount or 0):
            raise ValueError("insufficient funds")
    elif ctx.operation == "delete":
        ctx.delete_state()
    return ctx.get_state(int, 0)


def call(id: int, op: str, data: Any = None, sender: str = "orch", task: int = 0) -> EntityMessage:
    return EntityMessage(
        id=id,
        kind=MessageKind.CALL,
        operation=op,
        input=payload.encode(data),
        sender_instance_id=sender,
        sender_execution_id=f"{sender}-e1",
        sender_task_id=task,
    )


def signal(id: int, op: str, data: Any = None, sender: str | None = None) -> EntityMessage:
    return EntityMessage(
        id=id, kind=MessageKind.SIGNAL, operation=op, input=payload.encode(data), sender_instance_id=sender
    )


def lock(id: int, sender: str, section: str, lock_set: tuple[str, ...], position: int = 0) -> EntityMessage:
    return EntityMessage(
        id=id,
        kind=MessageKind.LOCK,
        sender_instance_id=sender,
        sender_execution_id=f"{sender}-e1",
        sender_task_id=7,
        critical_section_id=section,
        lock_set=lock_set,
        lock_position=position,
    )


def unlock(id: int, sender: str, section: str) -> EntityMessage:
    return EntityMessage(
        id=id, kind=MessageKind.UNLOCK, sender_instance_id=sender, critical_section_id=section
    )


def run(
    messages: list[EntityMessage], state: Any = None, holder: LockHolder | None = None, entity: Any = account
):
    return run_entity_batch(entity, ACCOUNT, payload.encode(state), holder, messages, now=NOW)


def test_operations_apply_in_inbox_order_and_calls_are_answered() -> None:
    result = run([signal(1, "deposit", 10), call(2, "withdraw", 3, task=4), call(3, "deposit", 5, task=5)])
    assert payload.decode(result.state) == 12
    assert result.consumed == (1, 2, 3)
    responses = [o for o in result.outgoing if isinstance(o, OperationResponse)]
    assert [(r.task_id, payload.decode(r.result), r.failure) for r in responses] == [
        (4, 7, None),
        (5, 12, None),
    ]
    assert responses[0].instance_id == "orch" and responses[0].execution_id == "orch-e1"


def test_a_failed_operation_rolls_back_only_its_own_changes_and_messages() -> None:
    result = run([call(1, "withdraw", 50, task=1), call(2, "withdraw", 5, task=2)], state=20)
    assert payload.decode(result.state) == 15
    failed, ok = (o for o in result.outgoing if isinstance(o, OperationResponse))
    assert failed.failure is not None and failed.failure.is_caused_by(ValueError)
    assert "insufficient funds" in failed.failure.message and failed.result is None
    assert payload.decode(ok.result) == 15
    sent = [o for o in result.outgoing if isinstance(o, SendSignal)]
    assert [(s.entity_id, payload.decode(s.input)) for s in sent] == [("@audit@log", 5)]


def test_a_failed_signal_answers_nobody() -> None:
    result = run([signal(1, "withdraw", 50, sender="orch")], state=1)
    assert result.outgoing == () and payload.decode(result.state) == 1 and result.consumed == (1,)


def test_delete_leaves_no_state() -> None:
    assert run([signal(1, "delete")], state=5).state is None


def test_a_missing_entity_fails_each_operation_not_the_batch() -> None:
    result = run_entity_batch(None, ACCOUNT, None, None, [call(1, "deposit", 1), call(2, "get")], now=NOW)
    assert result.consumed == (1, 2)
    failures = [o.failure for o in result.outgoing if isinstance(o, OperationResponse)]
    assert (
        all(f is not None and "no entity named 'account'" in f.message for f in failures)
        and len(failures) == 2
    )


def test_a_lock_when_free_is_forwarded_along_the_set_then_granted_by_the_last() -> None:
    lock_set = ("@account@a", "@account@b")
    first = run([lock(1, "o1", "cs", lock_set)])
    assert first.lock == LockHolder("o1", "o1-e1", "cs")
    (forward,) = first.outgoing
    assert isinstance(forward, ForwardLock) and forward.entity_id == "@account@b"
    assert forward.message.lock_position == 1 and forward.message.lock_set == lock_set
    last = run([forward.message])
    assert last.outgoing == (
        LockGranted(instance_id="o1", execution_id="o1-e1", task_id=7, critical_section_id="cs"),
    )


def test_while_locked_only_the_holder_is_served_and_the_rest_wait_in_order() -> None:
    holder = LockHolder("o1", "o1-e1", "cs")
    messages = [
        signal(1, "deposit", 100, sender="client"),
        call(2, "deposit", 1, sender="o1", task=3),
        lock(3, "o2", "cs2", ("@account@a",)),
        call(4, "deposit", 2, sender="o2"),
    ]
    result = run(messages, state=0, holder=holder)
    assert result.consumed == (2,) and result.lock == holder and payload.decode(result.state) == 1
    # the holder's unlock arrives: the waiting messages run in inbox order, o2 takes the lock, and its
    # own later call runs under it
    result = run([*messages[:1], *messages[2:], unlock(5, "o1", "cs")], state=1, holder=holder)
    assert result.consumed == (5, 1, 3, 4)
    assert result.lock == LockHolder("o2", "o2-e1", "cs2")
    assert payload.decode(result.state) == 103


def test_a_signal_that_waits_for_a_lock_still_runs_before_a_later_one() -> None:
    holder = LockHolder("o1", "o1-e1", "cs")
    messages = [signal(1, "deposit", 1), unlock(2, "o1", "cs"), signal(3, "withdraw", 1)]
    result = run(messages, state=0, holder=holder)
    assert result.consumed == (2, 1, 3) and payload.decode(result.state) == 0 and result.lock is None


def test_an_unlock_withdraws_its_lock_request_still_waiting_here() -> None:
    holder = LockHolder("o1", "o1-e1", "cs")
    messages = [lock(1, "o2", "cs2", ("@account@a",)), unlock(2, "o2", "cs2")]
    result = run(messages, holder=holder)
    assert set(result.consumed) == {1, 2} and result.lock == holder and result.outgoing == ()


def test_a_stale_unlock_changes_nothing() -> None:
    holder = LockHolder("o1", "o1-e1", "cs")
    result = run([unlock(1, "o9", "old")], holder=holder)
    assert result.lock == holder and result.consumed == (1,)


class Thermostat(DurableEntity):
    def set(self, degrees: int) -> None:
        self.set_state(degrees)

    def get(self) -> int:
        return self.get_state(int, 0)

    def remind(self) -> str:
        self.signal_entity(self.entity_context.entity_id, "set", 18, signal_time=timedelta(seconds=5))
        return self.schedule_new_orchestration("notify", {"to": "ops"})


def test_class_entities_dispatch_by_method_and_delete_is_built_in() -> None:
    result = run([signal(1, "set", 21), call(2, "GET", task=1), signal(3, "delete")], entity=Thermostat)
    (answer,) = result.outgoing
    assert isinstance(answer, OperationResponse) and payload.decode(answer.result) == 21
    assert result.state is None


def test_an_unknown_or_private_operation_fails_clearly() -> None:
    for operation in ("explode", "_secret", "__init__", "set_state"):
        (answer,) = run([call(1, operation)], entity=Thermostat).outgoing
        assert isinstance(answer, OperationResponse) and answer.failure is not None
        assert f"has no operation {operation!r}" in answer.failure.message


def test_entities_send_signals_and_start_orchestrations_with_ids_that_survive_a_rerun() -> None:
    first = run([call(9, "remind")], entity=Thermostat)
    again = run([call(9, "remind")], entity=Thermostat)
    assert first == again
    sent, started, answer = first.outgoing
    assert sent == SendSignal(entity_id="@account@a", operation="set", input="18", fire_at=NOW + 5_000_000)
    assert (
        isinstance(started, StartOrchestration)
        and started.name == "notify"
        and started.input == '{"to":"ops"}'
    )
    assert isinstance(answer, OperationResponse) and payload.decode(answer.result) == started.instance_id


@dataclass
class Position:
    x: int
    y: int


def test_state_is_typed_on_read_and_a_change_in_place_is_not_saved() -> None:
    def plotter(ctx: EntityContext, step: Position) -> Position:
        here = ctx.get_state(Position, Position(0, 0))
        here.x += step.x
        ctx.get_state(Position).y = 999  # a fresh copy each read: not saved
        if ctx.operation == "move":
            ctx.set_state(here)
        return here

    result = run(
        [signal(1, "move", {"x": 2, "y": 0}), call(2, "peek", {"x": 0, "y": 0})],
        {"x": 1, "y": 1},
        None,
        plotter,
    )
    assert payload.decode(result.state) == {"x": 3, "y": 1}


def test_state_coercion_as_the_sdk_does() -> None:
    ctx = EntityContext(ACCOUNT, "get", payload.encode("5"))
    assert ctx.get_state(int) == 5
    assert EntityContext(ACCOUNT, "get", None).get_state(int) is None
    with pytest.raises(TypeError):
        EntityContext(ACCOUNT, "get", payload.encode("five")).get_state(int)


def test_a_state_that_is_not_json_fails_the_operation_at_set_state() -> None:
    def bad(ctx: EntityContext, _: Any) -> None:
        ctx.set_state({1, 2})

    (answer,) = run([call(1, "x")], state=3, entity=bad).outgoing
    assert isinstance(answer, OperationResponse) and answer.failure is not None
    assert answer.failure.error_type == "dtctl.errors.PayloadError"


# --- entity ids (the SDK's test_entity_id_parsing scenarios) ----------------------------------------------


def test_entity_ids_parse_and_print_with_the_name_lower_cased() -> None:
    entity_id = EntityInstanceId.parse("@MyEntity@TestInstance")
    assert (entity_id.entity, entity_id.key, str(entity_id)) == (
        "myentity",
        "TestInstance",
        "@myentity@TestInstance",
    )
    assert EntityInstanceId("Counter", "k") == EntityInstanceId("counter", "k")
    assert hash(EntityInstanceId("Counter", "k")) == hash(EntityInstanceId.parse("@counter@k"))
    assert EntityInstanceId("a", "K") != EntityInstanceId("a", "k")  # keys keep their case


@pytest.mark.parametrize(
    "text",
    ["", "invalidEntityId", "@", "@@", "@invalid@", "@@invalid", "invalid@symbolplacement", "invalid@a@b"],
)
def test_malformed_entity_ids_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        EntityInstanceId.parse(text)


def test_entity_ids_order_by_their_string_form() -> None:
    ids = [EntityInstanceId("b", "1"), EntityInstanceId("a", "2"), EntityInstanceId("a", "10")]
    assert [str(i) for i in sorted(ids)] == ["@a@10", "@a@2", "@b@1"]
