"""Conformance: group commit (``batch``) and the idle worker's look ahead (``next_visible_at``)."""

from __future__ import annotations

import sqlite3
from contextlib import closing

import pytest

from dtctl.core.decision import CreateTimer, ScheduleTask
from dtctl.core.history import COMPLETED
from dtctl.hub.base import TaskHub
from tests.hub.conftest import Backend, StepClock
from tests.hub.hub_helpers import decide, lease, start, step

HOUR_US = 3_600_000_000


def raw_execute(backend: Backend, sql: str) -> None:
    """One statement (no parameters) on the backend's tables, committed, behind the hub's back."""
    if backend.name == "sqlite":
        with closing(sqlite3.connect(backend.location)) as conn:
            conn.execute(sql)
            conn.commit()
        return
    from dtctl.hub.postgres import conn as pgc

    with pgc.connect(pgc.parse_url(backend.location)) as conn:  # autocommit, the hub's search_path
        conn.execute(sql)


# --- batch -----------------------------------------------------------------------------------------------


def test_calls_in_a_batch_join_one_transaction_in_call_order(hub: TaskHub) -> None:
    start(hub, "a")
    item = lease(hub, "a")
    with hub.batch():
        [result] = hub.checkpoint([(item, decide(item, actions=[ScheduleTask(task_id=0, name="act")]))])
        [task] = hub.lease_activities("w", None, limit=5, lease_seconds=30)  # sees the checkpoint above
    assert result.committed and task.instance_id == "a" and task.task_id == 0
    assert [r.event.kind for r in hub.get_history("a")][-1] == "task_scheduled"
    assert hub.lease_activities("w", None, limit=5, lease_seconds=30) == []  # the lease committed too


def test_an_exception_rolls_the_whole_batch_back(hub: TaskHub) -> None:
    start(hub, "a", "b")
    item = lease(hub, "a")
    with pytest.raises(RuntimeError, match="boom"), hub.batch():
        [leased] = hub.lease_orchestrations("w2", None, limit=5, lease_seconds=30)
        assert leased.instance_id == "b"
        [result] = hub.checkpoint([(item, decide(item, actions=[ScheduleTask(task_id=0, name="act")]))])
        assert result.committed  # provisional until the block exits
        raise RuntimeError("boom")
    # The checkpoint is undone: no history, no task; the lease of "a" taken before the batch still holds.
    assert hub.get_history("a") == [] and hub.pending_activities("a") == []
    # The lease of "b" is undone: it is leasable again, as if never handed out.
    [again] = hub.lease_orchestrations("w3", None, limit=5, lease_seconds=30)
    assert again.instance_id == "b"
    assert again.dequeue_count == leased.dequeue_count  # the lease in the batch did not count
    [result] = hub.checkpoint([(item, decide(item))])
    assert result.committed


def test_nested_batches_join_the_outer_one(hub: TaskHub) -> None:
    start(hub, "a")
    item = lease(hub, "a")
    with pytest.raises(RuntimeError, match="outer"), hub.batch():
        with hub.batch():
            [result] = hub.checkpoint([(item, decide(item))])
            assert result.committed
        with hub.batch(durable=False):  # a lease-only block may join a durable one
            assert hub.lease_activities("w", None, limit=5, lease_seconds=30) == []
        raise RuntimeError("outer")
    assert hub.get_history("a") == []  # the inner block committed nothing by itself
    with hub.batch(), hub.batch():
        [result] = hub.checkpoint([(item, decide(item))])
    assert result.committed and hub.get_history("a") != []


def test_a_durable_write_cannot_join_a_non_durable_batch(hub: TaskHub) -> None:
    start(hub, "a", "b")
    with hub.batch(durable=False):  # leases only: allowed, and committed
        [item] = hub.lease_orchestrations("w", ["orch"], limit=1, lease_seconds=30)
    assert hub.lease_orchestrations("w", None, limit=5, lease_seconds=30)[0].instance_id != item.instance_id
    start(hub, "c")
    with pytest.raises(RuntimeError, match="durable"), hub.batch(durable=False):
        [leased] = hub.lease_orchestrations("w", None, limit=5, lease_seconds=30)
        assert leased.instance_id == "c"
        hub.raise_event("c", "e", None)
    assert len(hub.pending_messages("c")) == 1  # only its start: the event was refused
    assert [i.instance_id for i in hub.lease_orchestrations("w", None, limit=5, lease_seconds=30)] == ["c"]
    with pytest.raises(RuntimeError, match="durable"), hub.batch(durable=False):
        hub.checkpoint([(item, decide(item))])
    assert hub.get_history(item.instance_id) == []
    with pytest.raises(RuntimeError, match="durable"), hub.batch(durable=False), hub.batch():
        pass  # pragma: no cover


# --- next_visible_at -------------------------------------------------------------------------------------


def test_nothing_to_do_is_none(hub: TaskHub) -> None:
    assert hub.next_visible_at(None, None) is None
    assert hub.next_visible_at([], []) is None


def test_a_new_instance_is_visible_now_and_names_filter(hub: TaskHub) -> None:
    start(hub, "a", name="alpha")
    due = hub.next_visible_at(None, None)
    assert due is not None and due <= hub.now()
    assert hub.next_visible_at(["alpha"], []) == due
    assert hub.next_visible_at(["beta"], None) is None
    assert hub.next_visible_at([], None) is None  # no orchestrations asked for
    assert hub.next_visible_at(None, []) == due


def test_leased_work_is_not_counted_until_the_lease_expires(hub: TaskHub, clock: StepClock) -> None:
    start(hub, "a")
    lease(hub, "a", lease_seconds=30)
    assert hub.next_visible_at(None, None) is None
    clock.advance(31)
    due = hub.next_visible_at(None, None)
    assert due is not None and due <= hub.now()


def test_a_future_timer_gives_its_time(hub: TaskHub) -> None:
    start(hub, "a")
    item = lease(hub, "a")
    fire_at = hub.now() + HOUR_US
    [result] = hub.checkpoint([(item, decide(item, actions=[CreateTimer(task_id=0, fire_at=fire_at)]))])
    assert result.committed
    assert hub.next_visible_at(None, None) == fire_at
    assert hub.next_visible_at(["orch"], []) == fire_at
    assert hub.next_visible_at(["other"], None) is None
    hub.raise_event("a", "now", None)  # an earlier message wins
    due = hub.next_visible_at(None, None)
    assert due is not None and due <= hub.now()


def test_activity_tasks_count_unleased_and_by_name(hub: TaskHub) -> None:
    start(hub, "a")
    step(hub, "a", actions=[ScheduleTask(task_id=0, name="act")])
    assert hub.next_visible_at(None, None) is not None
    due = hub.next_visible_at([], ["act"])
    assert due is not None and due <= hub.now()
    assert hub.next_visible_at([], ["other"]) is None
    assert hub.next_visible_at(None, []) is None  # the instance itself waits for the task: nothing
    hub.lease_activities("w", ["act"], limit=5, lease_seconds=30)
    assert hub.next_visible_at(None, None) is None


def test_messages_of_finished_instances_are_not_counted(hub: TaskHub) -> None:
    start(hub, "a")
    step(hub, "a", COMPLETED, output='"done"')
    hub.raise_event("a", "late", None, force=True)  # stored, but no lease call would take it
    assert len(hub.pending_messages("a")) == 1
    assert hub.next_visible_at(None, None) is None


def test_messages_of_another_execution_are_not_counted(hub: TaskHub, backend: Backend) -> None:
    start(hub, "a")
    step(hub, "a")  # RUNNING, its inbox consumed
    assert hub.next_visible_at(None, None) is None
    raw_execute(
        backend,
        "INSERT INTO new_events (instance_id, execution_id, kind, task_id, payload, visible_at) "
        "VALUES ('a', 'old-execution', 'task_completed', 0, "
        '\'{"kind":"task_completed","task_id":0}\', 0)',
    )
    assert len(hub.pending_messages("a")) == 1
    assert hub.next_visible_at(None, None) is None  # a lease call would never hand it out
    hub.raise_event("a", "e", None)  # an untagged message counts
    due = hub.next_visible_at(None, None)
    assert due is not None and due <= hub.now()
