"""Conformance: the W3C trace context stored with an instance (schema 7), for tracing workers."""

from __future__ import annotations

from dtctl.core.decision import StartSubOrchestration
from dtctl.core.history import COMPLETED
from dtctl.hub.base import NewInstance, TaskHub
from tests.hub.hub_helpers import ORCH, step

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
