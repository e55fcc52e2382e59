"""Conformance: the W3C trace contexts stored with an instance (schema 4) and with the messages clients
send it or its entities (schema 7), for tracing workers."""

from __future__ import annotations

from dtctl.core.decision import ContinueAsNew, StartSubOrchestration
from dtctl.core.history import COMPLETED, CONTINUED_AS_NEW, EventRaised
from dtctl.hub.base import NewInstance, TaskHub
from tests.hub.hub_helpers import ORCH, decide, lease, step

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def test_the_callers_trace_context_is_stored_with_the_instance(hub: TaskHub) -> None:
    hub.create_instances(
        [
            NewInstance(instance_id="traced", name=ORCH, trace_context=TRACEPARENT),
            NewInstance(instance_id="plain", name=ORCH),
        ]
    )
    traced, plain = hub.trace_record("traced"), hub.trace_record("plain")
    assert traced is not None and plain is not None
    assert traced.trace_context == TRACEPARENT and plain.trace_context is None
    state = hub.get_instance("traced")
    assert state is not None
    assert (traced.execution_id, traced.created_at) == (state.execution_id, state.created_at)
    assert traced.parent_instance_id is None and hub.trace_record("missing") is None


def test_a_sub_orchestration_names_its_parent_execution(hub: TaskHub) -> None:
    hub.create_instances([NewInstance(instance_id="parent", name=ORCH, trace_context=TRACEPARENT)])
    item = step(hub, "parent", actions=[StartSubOrchestration(task_id=0, name=ORCH, instance_id="child")])
    child = hub.trace_record("child")
    assert child is not None and child.trace_context is None  # its trace is its parent's
    assert (child.parent_instance_id, child.parent_execution_id) == ("parent", item.execution_id)


def test_replacing_an_instance_replaces_its_trace_context(hub: TaskHub) -> None:
    hub.create_instances([NewInstance(instance_id="again", name=ORCH, trace_context=TRACEPARENT)])
    step(hub, "again", COMPLETED, output='"done"')
    hub.create_instances([NewInstance(instance_id="again", name=ORCH)], if_exists="replace")
    record = hub.trace_record("again")
    assert record is not None and record.trace_context is None


# --- the sender's trace context of a message (schema 7) ----------------------------------------------------

SENDER = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_a_raised_event_carries_its_senders_trace_context_to_the_lease(hub: TaskHub) -> None:
    hub.create_instances([NewInstance(instance_id="waits", name=ORCH, trace_context=TRACEPARENT)])
    step(hub, "waits")
    hub.raise_event("waits", "traced", '"a"', trace_context=SENDER)
    hub.raise_event("waits", "plain", '"b"')
    item = lease(hub, "waits")
    raised = {m.event.name: m.trace_context for m in item.messages if isinstance(m.event, EventRaised)}
    assert raised == {"traced": SENDER, "plain": None}
    assert [m.trace_context for m in hub.pending_messages("waits")] == [SENDER, None]
    record = hub.trace_record("waits")
    assert record is not None and record.trace_context == TRACEPARENT  # the instance's own is kept


def test_events_queued_again_at_continue_as_new_keep_their_senders_context(hub: TaskHub) -> None:
    hub.create_instances([NewInstance(instance_id="loops", name=ORCH)])
    item = lease(hub, "loops")
    hub.raise_event("loops", "late", None, trace_context=SENDER)  # raised while the episode runs
    again = ContinueAsNew(execution_id="loops-2", input=None)
    [result] = hub.checkpoint([(item, decide(item, CONTINUED_AS_NEW, continue_as_new=again))])
    assert result.committed
    leased = lease(hub, "loops")
    assert leased.execution_id == "loops-2"
    late = [m for m in leased.messages if isinstance(m.event, EventRaised)]
    assert [(m.event.name, m.trace_context) for m in late] == [("late", SENDER)]  # type: ignore[attr-defined]


def test_a_client_signal_carries_its_senders_trace_context_to_the_entity_lease(hub: TaskHub) -> None:
    hub.signal_entity("@counter@a", "add", "1", trace_context=SENDER)
    hub.signal_entity("@counter@a", "add", "2")
    [item] = hub.lease_entities("w1", None, limit=10, lease_seconds=30)
    assert [(m.input, m.trace_context) for m in item.messages] == [("1", SENDER), ("2", None)]
