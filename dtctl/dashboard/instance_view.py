"""The instance page's data: the instance, what it waits for, its history, timeline and family.

Gathered through :class:`dtctl.client.TaskHubClient` (and :mod:`dtctl.client_views`, which derives the
waiting-for and timeline views the CLI prints); nothing here knows about HTTP or templates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from dtctl.client import TaskHubClient
from dtctl.client_views import TaskNames, Timeline, WaitingFor
from dtctl.core.history import (
    TERMINAL_STATUSES,
    ExecutionStarted,
    SubOrchestrationCreated,
    event_to_dict,
)
from dtctl.dashboard import fmt
from dtctl.hub.base import HistoryRecord, InstanceState

MAX_TREE_NODES = 200  # sub-orchestrations shown in the tree (a fan-out of thousands is summarised)
MAX_TREE_DEPTH = 4
MAX_PARENT_CHAIN = 10


@dataclass(frozen=True, slots=True, kw_only=True)
class TreeNode:
    instance_id: str
    name: str
    status: str | None  # None: not in the hub (purged, or not created yet)
    task_id: int | None
    children: tuple[TreeNode, ...] = ()
    more: int = 0  # children not shown (the node limit was reached)


@dataclass(frozen=True, slots=True, kw_only=True)
class InstancePage:
    state: InstanceState
    execution_id: str  # the execution shown (the current one unless ?execution= chose another)
    current: bool
    waiting: WaitingFor | None
    history: list[dict[str, Any]]
    timeline: dict[str, Any]
    parents: list[tuple[str, str]]  # (instance id, name) from the root down to the direct parent
    children: list[TreeNode]
    children_more: int
    payloads: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    failure: dict[str, Any] | None = None
    now: int = 0


def instance_page(client: TaskHubClient, instance_id: str, execution_id: str | None = None) -> InstancePage:
    state = client.get_instance_or_raise(instance_id)
    shown = execution_id or state.execution_id
    records = client.get_history_or_raise(instance_id, execution_id)
    now = client.hub.now()
    current = shown == state.execution_id
    live = current and state.status not in TERMINAL_STATUSES
    budget = [MAX_TREE_NODES]
    children, more = _children(client, records, 1, budget)
    return InstancePage(
        state=state,
        execution_id=shown,
        current=current,
        waiting=client.waiting_for(instance_id) if live else None,
        history=history_rows(records),
        timeline=timeline_data(client.timeline(instance_id, execution_id)),
        parents=_parents(client, state),
        children=children,
        children_more=more,
        payloads={
            "input": fmt.payload_view(_input_of(state, records)),
            "output": fmt.payload_view(state.output) if current else None,
            "custom status": fmt.payload_view(state.custom_status) if current else None,
        },
        failure=fmt.failure_view(state.failure) if current else None,
        now=now,
    )


def _input_of(state: InstanceState, records: Sequence[HistoryRecord]) -> str | None:
    first = records[0].event if records else None
    return first.input if isinstance(first, ExecutionStarted) else state.input


def history_rows(records: Sequence[HistoryRecord]) -> list[dict[str, Any]]:
    names = TaskNames()
    rows: list[dict[str, Any]] = []
    for record in records:
        event = record.event
        data = event_to_dict(event)
        failure = data.get("failure")
        rows.append(
            {
                "sequence": record.sequence,
                "time": fmt.clock(event.timestamp),
                "kind": event.kind,
                "name": names.of(event),
                "task_id": event.task_ref,
                "detail": _detail(data),
                "failure": failure if isinstance(failure, dict) else None,
                "target": data.get("instance_id") if event.kind == "sub_orchestration_created" else None,
            }
        )
    return rows


def _detail(data: dict[str, Any]) -> str:
    parts: list[str] = []
    if "status" in data:
        parts.append(str(data["status"]))
    if "fire_at" in data:
        parts.append(f"fires {fmt.clock(data['fire_at'])}")
    for key in ("result", "input", "data", "reason"):
        if data.get(key) is not None:
            parts.append(fmt.short(str(data[key]), 120))
            break
    return " ".join(parts)


def timeline_data(timeline: Timeline) -> dict[str, Any]:
    """What the browser draws (dashboard.js): times relative to the execution's start, in µs."""
    end = timeline.end if timeline.end is not None else max(timeline.now, timeline.start)
    return {
        "instance_id": timeline.instance_id,
        "execution_id": timeline.execution_id,
        "name": timeline.name,
        "status": timeline.status,
        "start": fmt.clock(timeline.start),
        "total": max(end - timeline.start, 1),
        "running": timeline.end is None,
        "spans": [
            {
                "kind": s.kind,
                "name": s.name if s.kind != "timer" else f"until {fmt.clock(int(s.target or 0))[11:19]}",
                "task_id": s.task_id,
                "target": s.target if s.kind == "sub_orchestration" else None,
                "entity": s.target if s.kind == "entity" else None,
                "start": s.start - timeline.start,
                "end": None if s.end is None else s.end - timeline.start,
                "outcome": s.outcome,
                "took": fmt.duration((s.end if s.end is not None else end) - s.start)
                + ("" if s.end is not None else "+"),
                "failure": None if s.failure is None else f"{s.failure.error_type}: {s.failure.message}",
            }
            for s in timeline.spans
        ],
    }


def _parents(client: TaskHubClient, state: InstanceState) -> list[tuple[str, str]]:
    chain: list[tuple[str, str]] = []
    parent_id = state.parent_instance_id
    while parent_id is not None and len(chain) < MAX_PARENT_CHAIN:
        parent = client.hub.get_instance(parent_id, include_payloads=False)
        if parent is None:
            chain.append((parent_id, "?"))
            break
        chain.append((parent.instance_id, parent.name))
        parent_id = parent.parent_instance_id
    return list(reversed(chain))


def _children(
    client: TaskHubClient, records: Sequence[HistoryRecord], depth: int, budget: list[int]
) -> tuple[list[TreeNode], int]:
    """The sub-orchestrations this execution created, each with its own, within the node budget."""
    created = [r.event for r in records if isinstance(r.event, SubOrchestrationCreated)]
    nodes: list[TreeNode] = []
    for index, event in enumerate(created):
        if budget[0] <= 0:
            return nodes, len(created) - index
        budget[0] -= 1
        assert isinstance(event, SubOrchestrationCreated)
        child = client.hub.get_instance(event.instance_id, include_payloads=False)
        grandchildren: list[TreeNode] = []
        more = 0
        if child is not None and depth < MAX_TREE_DEPTH:
            grandchildren, more = _children(client, client.get_history(child.instance_id), depth + 1, budget)
        nodes.append(
            TreeNode(
                instance_id=event.instance_id,
                name=event.name,
                status=None if child is None else child.status,
                task_id=event.task_id,
                children=tuple(grandchildren),
                more=more,
            )
        )
    return nodes, 0
