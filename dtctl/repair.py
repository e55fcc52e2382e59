"""Restart: a finished instance started again as a fresh execution (``TaskHubClient.restart``).

Rewind lives in the hub (one transaction, :mod:`dtctl.hub.sql.repair`); a restart is a plain create:
the same name and input (the current execution's, so after a continue-as-new the latest input) and
version, under the same id (the finished instance is replaced, in the create's own transaction, which
refuses an instance that is still live) or under a new id. The restarted instance is top-level: a
sub-orchestration restarted on its own reports to no parent.
"""

from __future__ import annotations

import uuid
from dataclasses import fields, replace
from typing import Any

from dtctl.core import names
from dtctl.core.history import TERMINAL_STATUSES, ExecutionStarted
from dtctl.errors import InstanceNotFound, InvalidState
from dtctl.hub.base import InstanceState, NewInstance, TaskHub

__all__ = ["restart", "started_version"]

# How many events to read for the execution's ExecutionStarted (it is the first or second one).
_HEAD = 4


def restart(hub: TaskHub, instance_id: str, *, new_instance_id: bool = False) -> str:
    """Create the instance again; returns the id it runs under."""
    names.instance_ref(instance_id)
    state = hub.get_instance(instance_id, include_payloads=True)
    if state is None:
        raise InstanceNotFound(f"no instance {instance_id!r} in hub {hub.url}")
    if state.status not in TERMINAL_STATUSES:
        raise InvalidState(
            f"instance {instance_id!r} is {state.status}; only a finished instance can be restarted",
            hint="terminate it first (dtctl terminate ID), then restart it",
        )
    new = _fresh(state, started_version(hub, state), new_instance_id)
    hub.create_instances([new], if_exists="replace")
    return new.instance_id


def started_version(hub: TaskHub, state: InstanceState) -> str | None:
    """The version the current execution started with, when its ExecutionStarted records one."""
    head = hub.get_history(state.instance_id, state.execution_id, limit=_HEAD)
    for record in head:
        if isinstance(record.event, ExecutionStarted):
            version = getattr(record.event, "version", None)  # recorded once instances carry versions
            return version if isinstance(version, str) else None
    return None


def _fresh(state: InstanceState, version: str | None, new_instance_id: bool) -> NewInstance:
    new = NewInstance(
        instance_id=uuid.uuid4().hex if new_instance_id else state.instance_id,
        name=state.name,
        input=state.input,
    )
    # The seam for instance versions (issue 12, item 1): NewInstance takes the version once it has the
    # field; until then there is no version to carry over.
    if version is not None and "version" in {f.name for f in fields(NewInstance)}:
        carried: dict[str, Any] = {"version": version}
        new = replace(new, **carried)
    return new
