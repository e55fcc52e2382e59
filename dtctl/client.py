"""TaskHubClient: start, signal, inspect and purge orchestration instances (DESIGN §3).

The client encodes every user payload (inputs, event data) before anything reaches the hub, so a
value that is not JSON fails at the call site and nothing is stored. It returns data and never prints.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dtctl.core import payload
from dtctl.core.app import function_name
from dtctl.core.history import TERMINAL_STATUSES
from dtctl.errors import InstanceNotFound, UsageError, WaitTimeout
from dtctl.hub import DEFAULT_HUB, open_hub
from dtctl.hub.base import (
    HistoryRecord,
    IfExists,
    InstancePage,
    InstanceQuery,
    InstanceState,
    NewInstance,
    PurgeQuery,
    ScaleMetrics,
    TaskHub,
    TerminateOutcome,
)

HUB_ENV = "DTCTL_HUB"
_FIRST_POLL = 0.002  # seconds; doubles up to _MAX_POLL while waiting for an instance
_MAX_POLL = 0.1

Time = datetime | int  # a datetime, or epoch microseconds UTC


@dataclass(frozen=True, slots=True)
class StartRequest:
    """One instance of a batch start (:meth:`TaskHubClient.start_instances`)."""

    name: str | Callable[..., Any]
    input: Any = None
    instance_id: str | None = None
    start_at: datetime | None = None


def to_micros(value: Time | None) -> int | None:
    """Epoch microseconds UTC; a naive datetime is taken as UTC (orchestration time is UTC)."""
    if value is None or isinstance(value, int):
        return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp() * 1_000_000)


class TaskHubClient:
    """A client of one task hub: a hub object, a path or URL, or ``$DTCTL_HUB`` / ``./taskhub.db``."""

    def __init__(self, hub: TaskHub | str | Path | None = None) -> None:
        if hub is None:
            hub = os.environ.get(HUB_ENV) or DEFAULT_HUB
        self.hub: TaskHub = open_hub(hub) if isinstance(hub, (str, Path)) else hub

    def close(self) -> None:
        """Close the hub (also one that was handed in: the client is its last user)."""
        self.hub.close()

    def __enter__(self) -> TaskHubClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- starting instances -----------------------------------------------------------------------

    def start_instance(
        self,
        name_or_fn: str | Callable[..., Any],
        *,
        input: Any = None,
        instance_id: str | None = None,
        start_at: datetime | None = None,
        if_exists: IfExists = "fail",
    ) -> str:
        """Schedule a new instance; returns its id (the existing one's with ``if_exists="skip"``)."""
        request = StartRequest(name_or_fn, input, instance_id, start_at)
        return self.start_instances([request], if_exists=if_exists)[0]

    def start_instances(
        self,
        requests: Sequence[StartRequest | tuple[Any, ...]],
        *,
        if_exists: IfExists = "fail",
    ) -> list[str]:
        """Schedule many instances in one transaction (all or nothing with ``fail``).

        Each request is a :class:`StartRequest` or a tuple ``(name, input[, instance_id[, start_at]])``.
        """
        instances = [_new_instance(_as_request(r)) for r in requests]
        self.hub.create_instances(instances, if_exists=if_exists)
        return [i.instance_id for i in instances]

    # --- messages to instances --------------------------------------------------------------------

    def raise_event(self, instance_id: str, name: str, data: Any = None, *, force: bool = False) -> None:
        encoded = payload.encode(data, what=f"the data of event {name!r}")
        self.hub.raise_event(instance_id, name, encoded, force=force)

    def terminate(
        self, instance_id: str, reason: str | None = None, *, recursive: bool = True
    ) -> TerminateOutcome:
        return self.hub.terminate(instance_id, reason, recursive=recursive)

    def suspend(self, instance_id: str, reason: str | None = None) -> None:
        self.hub.suspend(instance_id, reason)

    def resume(self, instance_id: str, reason: str | None = None) -> None:
        self.hub.resume(instance_id, reason)

    # --- reading ----------------------------------------------------------------------------------

    def get_instance(self, instance_id: str) -> InstanceState | None:
        return self.hub.get_instance(instance_id, include_payloads=True)

    def get_instance_or_raise(self, instance_id: str) -> InstanceState:
        state = self.hub.get_instance(instance_id, include_payloads=True)
        if state is None:
            raise _not_found(instance_id, self.hub)
        return state

    def list_instances(
        self,
        query: InstanceQuery | None = None,
        *,
        statuses: Sequence[str] = (),
        name: str | None = None,
        prefix: str | None = None,
        created_after: Time | None = None,
        created_before: Time | None = None,
        limit: int = 100,
        cursor: str | None = None,
        include_payloads: bool = False,
    ) -> InstancePage:
        """One page of instances, newest first: pass an :class:`InstanceQuery` or the filters."""
        if query is not None:
            return self.hub.list_instances(query)
        query = InstanceQuery(
            statuses=tuple(statuses),
            name=name,
            prefix=prefix,
            created_after=to_micros(created_after),
            created_before=to_micros(created_before),
            limit=limit,
            cursor=cursor,
            include_payloads=include_payloads,
        )
        return self.hub.list_instances(query)

    @staticmethod
    def decode_output(state: InstanceState, type_hint: Any = None) -> Any:
        """The instance's result as Python data (dataclasses rebuilt from ``type_hint``)."""
        return payload.decode(state.output, type_hint)

    @staticmethod
    def decode_input(state: InstanceState, type_hint: Any = None) -> Any:
        return payload.decode(state.input, type_hint)

    @staticmethod
    def decode_custom_status(state: InstanceState, type_hint: Any = None) -> Any:
        return payload.decode(state.custom_status, type_hint)

    def get_history(self, instance_id: str, execution_id: str | None = None) -> list[HistoryRecord]:
        return self.hub.get_history(instance_id, execution_id)

    def scale_metrics(self) -> ScaleMetrics:
        return self.hub.scale_metrics()

    def wait_for_completion(self, instance_id: str, timeout: float | None = None) -> InstanceState:
        """Poll until the instance is COMPLETED, FAILED or TERMINATED; returns its final state.

        Raises :class:`InstanceNotFound` if it does not exist, :class:`WaitTimeout` after ``timeout`` s.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = _FIRST_POLL
        while True:
            state = self.hub.get_instance(instance_id, include_payloads=True)
            if state is None:
                raise _not_found(instance_id, self.hub)
            if state.status in TERMINAL_STATUSES:
                return state
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise WaitTimeout(
                        f"instance {instance_id!r} is still {state.status} after {timeout:g} s",
                        hint="is a worker running on this hub? (dtctl worker APP)",
                    )
                delay = min(delay, left)
            time.sleep(delay)
            delay = min(delay * 2, _MAX_POLL)

    # --- maintenance ------------------------------------------------------------------------------

    def purge(
        self,
        instance_ids: Sequence[str] = (),
        *,
        statuses: Sequence[str] = (),
        completed_before: Time | None = None,
        batch_size: int = 500,
    ) -> int:
        """Delete finished instances (by id, or by status / completion time); returns how many."""
        query = PurgeQuery(
            instance_ids=tuple(instance_ids),
            statuses=tuple(statuses),
            completed_before=to_micros(completed_before),
            batch_size=batch_size,
        )
        return self.hub.purge(query)


def _not_found(instance_id: str, hub: TaskHub) -> InstanceNotFound:
    return InstanceNotFound(f"no instance {instance_id!r} in hub {hub.url}")


def _as_request(item: StartRequest | tuple[Any, ...]) -> StartRequest:
    if isinstance(item, StartRequest):
        return item
    if not 1 <= len(item) <= 4:
        raise TypeError("a start request tuple is (name, input[, instance_id[, start_at]])")
    return StartRequest(*item)


def _new_instance(request: StartRequest) -> NewInstance:
    name = function_name(request.name)
    if request.instance_id == "":
        raise UsageError("an instance id must not be empty")
    return NewInstance(
        instance_id=request.instance_id or uuid.uuid4().hex,
        name=name,
        input=payload.encode(request.input, what=f"the input of {name!r}"),
        start_at=to_micros(request.start_at),
    )
