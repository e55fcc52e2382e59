"""The runtime status of an orchestration instance and the kinds of work a worker leases.

Both are ``StrEnum``s: a member *is* its string, so it goes into the hub's columns, JSON and messages
unchanged, and a status read back from the hub compares equal to its member.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class RuntimeStatus(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    TERMINATED = "TERMINATED"
    SUSPENDED = "SUSPENDED"
    # Only an episode's decision ends this way: the instance row goes on RUNNING as a new execution.
    CONTINUED_AS_NEW = "CONTINUED_AS_NEW"


# An instance in one of these never runs again (a client may still replace it).
TERMINAL = frozenset({RuntimeStatus.COMPLETED, RuntimeStatus.FAILED, RuntimeStatus.TERMINATED})
# An instance in one of these can still be handed to a worker.
LIVE = frozenset({RuntimeStatus.PENDING, RuntimeStatus.RUNNING, RuntimeStatus.SUSPENDED})
# What an instance row can hold, in the order people read them (CONTINUED_AS_NEW is never stored).
STORED = (
    RuntimeStatus.PENDING,
    RuntimeStatus.RUNNING,
    RuntimeStatus.COMPLETED,
    RuntimeStatus.FAILED,
    RuntimeStatus.TERMINATED,
    RuntimeStatus.SUSPENDED,
)


class WorkItemKind(StrEnum):
    """The three queues of a hub, and the ``kind`` of a work log row."""

    ORCHESTRATION = "orchestration"
    ACTIVITY = "activity"
    ENTITY = "entity"  # one row per committed entity batch


def sql_list(values: Iterable[StrEnum]) -> str:
    """``('A', 'B')``: members as an SQL list literal, sorted (so the statement text is fixed).

    Only enum members of plain identifiers are accepted: nothing else ever reaches the SQL text.
    """
    members = sorted(set(values))
    for member in members:
        if not isinstance(member, StrEnum) or not member.value.replace("_", "").isalnum():
            raise ValueError(f"{member!r} cannot be written into SQL")
    if not members:
        raise ValueError("an SQL list needs at least one member")
    return "(" + ", ".join(f"'{m.value}'" for m in members) + ")"
