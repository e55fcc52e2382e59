"""The actions the dashboard offers with ``--allow-actions``: one entry per client method it may call.

An action is offered for an instance when the instance's status allows it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from dtctl.client import TaskHubClient
from dtctl.core.history import COMPLETED, FAILED, PENDING, RUNNING, SUSPENDED, TERMINATED
from dtctl.errors import UsageError

LIVE = (PENDING, RUNNING, SUSPENDED)
FINISHED = (COMPLETED, FAILED, TERMINATED)

Form = Mapping[str, str]


@dataclass(frozen=True, slots=True, kw_only=True)
class Action:
    key: str
    label: str
    method: str  # the TaskHubClient method; the action is offered only when the client has it
    statuses: tuple[str, ...]
    fields: tuple[str, ...] = ()  # form inputs: reason, event, data, new_id
    danger: bool = False
    confirm: str = ""
    run: Callable[[TaskHubClient, str, Form], str]


def _reason(form: Form) -> str | None:
    return (form.get("reason") or "").strip() or None


def _raise_event(client: TaskHubClient, instance_id: str, form: Form) -> str:
    name = (form.get("event") or "").strip()
    if not name:
        raise UsageError("the event needs a name")
    text = (form.get("data") or "").strip()
    try:
        data = json.loads(text) if text else None
    except ValueError as exc:
        raise UsageError(f"the event data is not JSON: {exc}") from None
    client.raise_event(instance_id, name, data)
    return f"raised {name!r} on {instance_id}"


def _terminate(client: TaskHubClient, instance_id: str, form: Form) -> str:
    outcome = client.terminate(instance_id, _reason(form))
    if not outcome.terminated:
        return f"{instance_id} already {outcome.status}; nothing to terminate"
    return f"terminating {instance_id}"


def _suspend(client: TaskHubClient, instance_id: str, form: Form) -> str:
    client.suspend(instance_id, _reason(form))
    return f"suspending {instance_id}"


def _resume(client: TaskHubClient, instance_id: str, form: Form) -> str:
    client.resume(instance_id, _reason(form))
    return f"resuming {instance_id}"


def _purge(client: TaskHubClient, instance_id: str, form: Form) -> str:
    deleted = client.purge([instance_id])
    return f"purged {instance_id}" if deleted else f"{instance_id} was not purged (not finished?)"


def _rewind(client: TaskHubClient, instance_id: str, form: Form) -> str:
    client.rewind(instance_id, reason=_reason(form))
    return f"rewinding {instance_id}"


def _restart(client: TaskHubClient, instance_id: str, form: Form) -> str:
    started = client.restart(instance_id, new_instance_id=form.get("new_id") == "on")
    return f"restarted {instance_id} as {started}" if started != instance_id else f"restarted {instance_id}"


ACTIONS: tuple[Action, ...] = (
    Action(
        key="raise-event",
        label="Raise event",
        method="raise_event",
        statuses=LIVE,
        fields=("event", "data"),
        confirm="Deliver this external event to the instance?",
        run=_raise_event,
    ),
    Action(
        key="suspend",
        label="Suspend",
        method="suspend",
        statuses=(PENDING, RUNNING),
        fields=("reason",),
        confirm="Suspend the instance? New events are held until it is resumed.",
        run=_suspend,
    ),
    Action(
        key="resume",
        label="Resume",
        method="resume",
        statuses=(SUSPENDED,),
        fields=("reason",),
        confirm="Resume the instance?",
        run=_resume,
    ),
    Action(
        key="terminate",
        label="Terminate",
        method="terminate",
        statuses=LIVE,
        fields=("reason",),
        danger=True,
        confirm="Terminate the instance and its running sub-orchestrations? This cannot be undone.",
        run=_terminate,
    ),
    Action(
        key="rewind",
        label="Rewind",
        method="rewind",
        statuses=(FAILED,),
        fields=("reason",),
        confirm="Rewind the failed instance: run what failed again, keep what succeeded?",
        run=_rewind,
    ),
    Action(
        key="restart",
        label="Restart",
        method="restart",
        statuses=FINISHED,
        fields=("new_id",),
        confirm="Start the instance again from the beginning with the same input?",
        run=_restart,
    ),
    Action(
        key="purge",
        label="Purge",
        method="purge",
        statuses=FINISHED,
        danger=True,
        confirm="Delete the instance and its history from the hub? This cannot be undone.",
        run=_purge,
    ),
)
BY_KEY = {a.key: a for a in ACTIONS}


def supported(client: TaskHubClient) -> list[Action]:
    """The actions this client can perform at all: every one (kept as a function for the pages)."""
    return list(ACTIONS)


def offered(client: TaskHubClient, status: str) -> list[Action]:
    """The actions for an instance in ``status``."""
    return [a for a in supported(client) if status in a.statuses]


def perform(client: TaskHubClient, key: str, instance_id: str, form: Form) -> str:
    action = BY_KEY.get(key)
    if action is None or action not in supported(client):
        raise UsageError(f"no such action {key!r}")
    return action.run(client, instance_id, form)


def describe(action: Action) -> dict[str, Any]:
    return {"key": action.key, "label": action.label, "fields": action.fields, "danger": action.danger}
