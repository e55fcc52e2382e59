"""Conformance: the entity queue on every backend.

Signals and orchestration actions become entity inbox rows; an entity is leased by one worker at a
time with its visible messages in FIFO order; a batch commits fenced by its lease token, with its
responses, forwards and signals; a locked entity's waiting messages do not make it leasable; clients
read, query and clean entities.
"""

from __future__ import annotations

from dtctl.core.decision import CallEntity, LockEntities, SignalEntity, UnlockEntities
from dtctl.core.entity_exec import (
    EntityBatchResult,
    ForwardLock,
    LockHolder,
    MessageKind,
    OperationResponse,
    SendSignal,
    StartOrchestration,
    run_entity_batch,
)
from dtctl.core.entity_id import EntityInstanceId
from dtctl.core.failure import FailureDetails
from dtctl.core.history import COMPLETED, RUNNING
from dtctl.hub.base import EntityBatch, EntityQuery, EntityWorkItem, TaskHub
from tests.hub.conftest import StepClock
from tests.hub.hub_helpers import kinds, start, step


def lease_one(hub: TaskHub, entity_id: str, owner: str = "w1") -> EntityWorkItem:
    items = hub.lease_entities(owner, None, limit=100, lease_seconds=30)
    found = [i for i in items if i.entity_id == entity_id]
    for other in items:
        if other.entity_id != entity_id:
            hub.abandon_entity(other)
    assert found, f"{entity_id} is not leasable"
    return found[0]


def adder(ctx, input):  # type: ignore[no-untyped-def]
    value = ctx.get_state(int, 0) + (input or 0)
    ctx.set_state(value)
    return value


def run(item: EntityWorkItem, now: int) -> EntityBatchResult:
    entity_id = EntityInstanceId(item.name, item.key)
    return run_entity_batch(adder, entity_id, item.state, item.lock, item.messages, now=now)


def test_signal_creates_the_entity_and_a_batch_applies_messages_in_order(
    hub: TaskHub, clock: StepClock
) -> None:
    for n in (1, 2, 3):
        hub.signal_entity("@Counter@a", "add", str(n))
    found = hub.get_entity("@counter@a")
    assert found is not None and found.state is None and found.backlog == 3 and found.name == "counter"
    item = lease_one(hub, "@counter@a")
    assert [m.input for m in item.messages] == ["1", "2", "3"]
    assert item.dequeue_count == 1
    assert hub.lease_entities("w2", None, limit=10, lease_seconds=30) == []  # one worker at a time
    clock.advance(1)
    assert hub.complete_entities([EntityBatch(item, run(item, clock()))]) == [True]
    done = hub.get_entity("@counter@a")
    assert done is not None and done.state == "6" and done.backlog == 0 and done.last_modified == clock()
    assert done.lease_owner is None and done.dequeue_count == 0
    assert hub.lease_entities("w1", None, limit=10, lease_seconds=30) == []


def test_a_lost_lease_is_fenced_and_the_taker_applies_the_messages_once(
    hub: TaskHub, clock: StepClock
) -> None:
    hub.signal_entity("@counter@a", "add", "5")
    first = lease_one(hub, "@counter@a", owner="w1")
    clock.advance(31)  # the lease expires: another worker takes the entity over
    second = lease_one(hub, "@counter@a", owner="w2")
    assert second.dequeue_count == 2 and second.lease_token != first.lease_token
    assert hub.complete_entities([EntityBatch(first, run(first, clock()))]) == [False]
    assert hub.complete_entities([EntityBatch(second, run(second, clock()))]) == [True]
    found = hub.get_entity("@counter@a")
    assert found is not None and found.state == "5" and found.backlog == 0


def test_names_filter_which_entities_a_worker_leases(hub: TaskHub) -> None:
    hub.signal_entity("@counter@a", "add", "1")
    hub.signal_entity("@other@b", "add", "1")
    assert [i.entity_id for i in hub.lease_entities("w", ["Counter"], limit=10, lease_seconds=30)] == [
        "@counter@a"
    ]
    assert hub.next_visible_entity(["other"]) is not None
    assert hub.next_visible_entity(["nobody"]) is None
    assert hub.lease_entities("w", [], limit=10, lease_seconds=30) == []


def test_a_delayed_signal_becomes_visible_at_its_time(hub: TaskHub, clock: StepClock) -> None:
    hub.signal_entity("@counter@a", "add", "1", fire_at=clock() + 10_000_000)
    assert hub.lease_entities("w", None, limit=10, lease_seconds=30) == []
    assert hub.next_visible_entity(None) == clock() + 10_000_000
    clock.advance(10)
    assert [m.input for m in lease_one(hub, "@counter@a").messages] == ["1"]


def test_checkpoint_routes_entity_actions_and_the_response_reaches_the_caller(
    hub: TaskHub, clock: StepClock
) -> None:
    start(hub, "o")
    actions = [
        CallEntity(task_id=0, entity_id="@counter@a", operation="add", input="2"),
        SignalEntity(task_id=1, entity_id="@counter@b", operation="add", input="3", fire_at=None),
    ]
    item = step(hub, "o", actions=actions)
    call = lease_one(hub, "@counter@a")
    [message] = call.messages
    assert message.kind is MessageKind.CALL
    assert (message.sender_instance_id, message.sender_execution_id, message.sender_task_id) == (
        "o",
        item.execution_id,
        0,
    )
    assert hub.complete_entities([EntityBatch(call, run(call, clock()))]) == [True]
    [response] = hub.pending_messages("o")
    assert response.event.kind == "entity_operation_completed"
    assert (response.event.task_id, response.event.result) == (0, "2")  # type: ignore[attr-defined]
    signal = lease_one(hub, "@counter@b")
    assert [m.kind for m in signal.messages] == [MessageKind.SIGNAL]


def test_a_response_to_a_finished_caller_is_dropped(hub: TaskHub, clock: StepClock) -> None:
    start(hub, "o")
    item = step(hub, "o", actions=[CallEntity(task_id=0, entity_id="@counter@a", operation="add", input="1")])
    step(hub, "o", COMPLETED, output='"done"') if hub.pending_messages("o") else None
    hub.terminate("o", "stop")
    leased = hub.lease_orchestrations("w", None, limit=10, lease_seconds=30)
    for work in leased:
        from tests.hub.hub_helpers import decide

        hub.checkpoint([(work, decide(work, "TERMINATED"))])
    call = lease_one(hub, "@counter@a")
    response = OperationResponse(instance_id="o", execution_id=item.execution_id, task_id=0, result="1")
    result = EntityBatchResult(state="1", lock=None, consumed=(call.messages[0].id,), outgoing=(response,))
    assert hub.complete_entities([EntityBatch(call, result)]) == [True]
    assert hub.pending_messages("o") == []


def test_lock_forwarding_and_grant_then_unlock(hub: TaskHub, clock: StepClock) -> None:
    start(hub, "o")
    ids = ("@account@a", "@account@b")
    item = step(hub, "o", actions=[LockEntities(task_id=0, critical_section_id="cs", entity_ids=ids)])
    first = lease_one(hub, "@account@a")
    assert [m.kind for m in first.messages] == [MessageKind.LOCK]
    batch = run(first, clock())
    assert isinstance(batch.outgoing[0], ForwardLock)
    assert hub.complete_entities([EntityBatch(first, batch)]) == [True]
    second = lease_one(hub, "@account@b")
    assert hub.complete_entities([EntityBatch(second, run(second, clock()))]) == [True]
    [granted] = hub.pending_messages("o")
    assert granted.event.kind == "entity_lock_granted"
    holder = LockHolder("o", item.execution_id, "cs")
    assert [hub.get_entity(e).lock for e in ids] == [holder, holder]  # type: ignore[union-attr]
    step(hub, "o", actions=[UnlockEntities(task_id=1, critical_section_id="cs", entity_ids=ids)])
    for entity_id in ids:
        unlock = lease_one(hub, entity_id)
        assert hub.complete_entities([EntityBatch(unlock, run(unlock, clock()))]) == [True]
        assert hub.get_entity(entity_id).lock is None  # type: ignore[union-attr]


def test_messages_waiting_for_a_lock_are_parked_until_it_is_released(hub: TaskHub, clock: StepClock) -> None:
    start(hub, "o")
    step(hub, "o", actions=[LockEntities(task_id=0, critical_section_id="cs", entity_ids=("@counter@a",))])
    locked = lease_one(hub, "@counter@a")
    hub.complete_entities([EntityBatch(locked, run(locked, clock()))])
    hub.signal_entity("@counter@a", "add", "7")  # from someone else: must wait for the lock
    waiting = lease_one(hub, "@counter@a")
    result = run(waiting, clock())
    assert result.consumed == ()
    assert hub.complete_entities([EntityBatch(waiting, result)]) == [True]
    assert hub.lease_entities("w", None, limit=10, lease_seconds=30) == []  # parked: not leased in a loop
    assert hub.next_visible_entity(None) is None
    [info] = hub.entity_messages("@counter@a")
    assert info.parked
    step(hub, "o", actions=[UnlockEntities(task_id=1, critical_section_id="cs", entity_ids=("@counter@a",))])
    unlock = lease_one(hub, "@counter@a")
    assert [m.kind for m in unlock.messages] == [MessageKind.SIGNAL, MessageKind.UNLOCK]
    assert hub.complete_entities([EntityBatch(unlock, run(unlock, clock()))]) == [True]
    found = hub.get_entity("@counter@a")
    assert found is not None and found.state == "7" and found.lock is None and found.backlog == 0


def test_a_batch_sends_signals_and_starts_orchestrations(hub: TaskHub, clock: StepClock) -> None:
    hub.signal_entity("@counter@a", "add", "1")
    item = lease_one(hub, "@counter@a")
    outgoing = (
        SendSignal(entity_id="@counter@b", operation="add", input="4"),
        SendSignal(entity_id="@counter@c", operation="add", input="4", fire_at=clock() + 5_000_000),
        StartOrchestration(name="orch", instance_id="started-by-entity", input='"x"'),
    )
    result = EntityBatchResult(state="1", lock=None, consumed=(item.messages[0].id,), outgoing=outgoing)
    assert hub.complete_entities([EntityBatch(item, result)]) == [True]
    assert [i.entity_id for i in hub.lease_entities("w", None, limit=10, lease_seconds=30)] == ["@counter@b"]
    started = hub.get_instance("started-by-entity")
    assert started is not None and started.name == "orch" and started.input == '"x"'


def test_failed_operation_reports_failure_and_keeps_state(hub: TaskHub, clock: StepClock) -> None:
    start(hub, "o")
    item = step(hub, "o", actions=[CallEntity(task_id=3, entity_id="@counter@a", operation="x", input=None)])
    call = lease_one(hub, "@counter@a")
    failure = FailureDetails(message="boom", error_type="ValueError")
    response = OperationResponse(instance_id="o", execution_id=item.execution_id, task_id=3, failure=failure)
    result = EntityBatchResult(state=None, lock=None, consumed=(call.messages[0].id,), outgoing=(response,))
    hub.complete_entities([EntityBatch(call, result)])
    [failed] = hub.pending_messages("o")
    assert failed.event.kind == "entity_operation_failed"
    assert failed.event.failure.message == "boom"  # type: ignore[attr-defined]


def test_query_pages_filters_and_states(hub: TaskHub, clock: StepClock) -> None:
    for key in ("a", "b", "c"):
        hub.signal_entity(f"@counter@{key}", "add", "1")
    hub.signal_entity("@other@z", "add", "1")
    page = hub.query_entities(EntityQuery(name="COUNTER", limit=2))
    assert [e.entity_id for e in page.entities] == ["@counter@a", "@counter@b"] and page.next_cursor
    rest = hub.query_entities(EntityQuery(name="counter", limit=2, cursor=page.next_cursor))
    assert [e.entity_id for e in rest.entities] == ["@counter@c"] and rest.next_cursor is None
    assert [e.entity_id for e in hub.query_entities(EntityQuery(prefix="@oth")).entities] == ["@other@z"]
    item = lease_one(hub, "@counter@a")
    clock.advance(5)
    hub.complete_entities([EntityBatch(item, run(item, clock()))])
    recent = hub.query_entities(EntityQuery(modified_after=clock() - 1, include_state=False))
    assert [(e.entity_id, e.state) for e in recent.entities] == [("@counter@a", None)]
    with_state = hub.query_entities(EntityQuery(prefix="@counter@a"))
    assert with_state.entities[0].state == "1"


def test_clean_releases_orphaned_locks_and_removes_empty_entities(hub: TaskHub, clock: StepClock) -> None:
    start(hub, "o")
    step(hub, "o", actions=[LockEntities(task_id=0, critical_section_id="cs", entity_ids=("@counter@a",))])
    locked = lease_one(hub, "@counter@a")
    hub.complete_entities([EntityBatch(locked, run(locked, clock()))])
    hub.signal_entity("@counter@e", "delete", None)
    empty = lease_one(hub, "@counter@e")
    nothing = EntityBatchResult(state=None, lock=None, consumed=(empty.messages[0].id,), outgoing=())
    hub.complete_entities([EntityBatch(empty, nothing)])
    assert hub.clean_entity_storage(remove_empty=False).orphaned_locks_released == 0  # holder runs
    hub.terminate("o", "stop")  # a PENDING/RUNNING unleased instance: its unlock never comes
    status = hub.get_instance("o")
    assert status is not None
    if status.status == RUNNING:  # terminated at its next episode
        from tests.hub.hub_helpers import decide

        for work in hub.lease_orchestrations("w", None, limit=10, lease_seconds=30):
            hub.checkpoint([(work, decide(work, "TERMINATED"))])
    dry = hub.clean_entity_storage(dry_run=True)
    assert (dry.orphaned_locks_released, dry.empty_entities_removed) == (1, 1)
    assert hub.get_entity("@counter@a").lock is not None  # type: ignore[union-attr]
    done = hub.clean_entity_storage()
    # released, @counter@a is empty too (it never had state): both go
    assert (done.orphaned_locks_released, done.empty_entities_removed) == (1, 2)
    assert hub.get_entity("@counter@e") is None and hub.get_entity("@counter@a") is None


def test_release_leases_gives_entity_leases_back(hub: TaskHub) -> None:
    hub.signal_entity("@counter@a", "add", "1")
    lease_one(hub, "@counter@a", owner="w1")
    assert hub.release_leases("w1") == 1
    assert lease_one(hub, "@counter@a", owner="w2").dequeue_count == 2


def test_scale_metrics_count_entities_with_work_as_orchestrations(hub: TaskHub) -> None:
    assert hub.scale_metrics().live_orchestrations == 0
    hub.signal_entity("@counter@a", "add", "1")
    hub.signal_entity("@counter@a", "add", "1")
    hub.signal_entity("@counter@b", "add", "1")
    assert hub.scale_metrics().live_orchestrations == 2


def test_checkpoint_history_kinds_for_entity_actions(hub: TaskHub) -> None:
    start(hub, "o")
    step(hub, "o", actions=[SignalEntity(task_id=0, entity_id="@counter@a", operation="add", input="1")])
    assert "entity_operation_signaled" in kinds([r.event for r in hub.get_history("o")])


def test_entity_health_counts_orphans_and_waiting_work(hub: TaskHub, clock: StepClock) -> None:
    from dtctl import ops

    start(hub, "o")
    step(hub, "o", actions=[LockEntities(task_id=0, critical_section_id="cs", entity_ids=("@counter@a",))])
    locked = lease_one(hub, "@counter@a")
    hub.complete_entities([EntityBatch(locked, run(locked, clock()))])
    hub.signal_entity("@counter@b", "add", "1")
    health = hub.entity_health()
    assert (health.entities, health.ready, health.locked, health.orphaned_locks) == (2, 1, 1, 0)
    assert health.oldest_ready_at == clock()
    assert [f.severity for f in ops.entity_findings(health)] == ["ok", "ok"]
    hub.terminate("o", "stop")
    from tests.hub.hub_helpers import decide

    for work in hub.lease_orchestrations("w", None, limit=10, lease_seconds=30):
        hub.checkpoint([(work, decide(work, "TERMINATED"))])
    clock.advance(120)
    later = hub.entity_health()
    assert later.orphaned_locks == 1
    checks = {f.check: f.severity for f in ops.entity_findings(later)}
    assert checks == {"orphaned-entity-locks": "warning", "stuck-entity-queues": "problem"}
