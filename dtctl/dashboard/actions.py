"""The actions the dashboard offers with ``--allow-actions``: one entry per client method it may call.

An instance action is offered when the instance's status allows it; the entity action (signal) is
offered on every entity page.
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
    statuses: tuple[str, ...] = ()
    fields: tuple[str, ...] = ()  # form inputs: reason, event, data, new_id, operation, input
    target: str = "instance"  # what the action's id names: "instance" or "entity"
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


def _signal_entity(client: TaskHubClient, entity_id: str, form: Form) -> str:
    operation = (form.get("operation") or "").strip()
    if not operation:
        raise UsageError("the signal needs an operation name")
    text = (form.get("input") or "").strip()
    try:
        value = json.loads(text) if text else None
    except ValueError as exc:
        raise UsageError(f"the operation's input is not JSON: {exc}") from None
    client.signal_entity(entity_id, operation, value)
    return f"signalled {operation!r} to {entity_id}"


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
        statuses=LIVE,
        fields=("event", "data"),
        confirm="Deliver this external event to the instance?",
        run=_raise_event,
    ),
    Action(
        key="suspend",
        label="Suspend",
        statuses=(PENDING, RUNNING),
        fields=("reason",),
        confirm="Suspend the instance? New events are held until it is resumed.",
        run=_suspend,
    ),
    Action(
        key="resume",
        label="Resume",
        statuses=(SUSPENDED,),
        fields=("reason",),
        confirm="Resume the instance?",
        run=_resume,
    ),
    Action(
        key="terminate",
        label="Terminate",
        statuses=LIVE,
        fields=("reason",),
        danger=True,
        confirm="Terminate the instance and its running sub-orchestrations? This cannot be undone.",
        run=_terminate,
    ),
    Action(
        key="rewind",
        label="Rewind",
        statuses=(FAILED,),
        fields=("reason",),
        confirm="Rewind the failed instance: run what failed again, keep what succeeded?",
        run=_rewind,
    ),
    Action(
        key="restart",
        label="Restart",
        statuses=FINISHED,
        fields=("new_id",),
        confirm="Start the instance again from the beginning with the same input?",
        run=_restart,
    ),
    Action(
        key="purge",
        label="Purge",
        statuses=FINISHED,
        danger=True,
        confirm="Delete the instance and its history from the hub? This cannot be undone.",
        run=_purge,
    ),
)
SIGNAL_ENTITY = Action(
    key="signal-entity",
    label="Signal entity",
    fields=("operation", "input"),
    target="entity",
    confirm="Send this one-way operation to the entity? It runs when a worker takes the entity.",
    run=_signal_entity,
)
BY_KEY = {a.key: a for a in (*ACTIONS, SIGNAL_ENTITY)}


def offered(status: str) -> list[Action]:
    """The actions for an instance in ``status``."""
    return [a for a in ACTIONS if status in a.statuses]


def perform(client: TaskHubClient, action: Action, target_id: str, form: Form) -> str:
    if not target_id:
        raise UsageError(f"which {action.target}? ({action.target}_id is missing)")
    return action.run(client, target_id, form)


def describe(action: Action) -> dict[str, Any]:
    return {"key": action.key, "label": action.label, "fields": action.fields, "danger": action.danger}
