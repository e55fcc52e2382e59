"""What :class:`~dtctl.client.TaskHubClient` does to durable entities, mixed into it.

Names follow the durabletask SDK's client: ``signal_entity``, ``get_entity``, ``query_entities`` (here
one page at a time, or every page with :meth:`EntityClient.iter_entities`) and ``clean_entity_storage``.
Payloads are encoded and decoded here by the client's ``data_converter``, as the client does for
instances (give it the app's converter).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from dtctl.client_views import PendingEntityRequest
from dtctl.core import payload
from dtctl.core.entity_id import EntityInstanceId
from dtctl.errors import UsageError
from dtctl.hub.base import TaskHub
from dtctl.hub.entity_records import EntityCleanup, EntityMessageInfo, EntityPage, EntityQuery, EntityState
from dtctl.observe.tracecontext import current_traceparent


@dataclass(frozen=True, slots=True)
class EntityDetails:
    """``dtctl entity show``: the entity and the messages waiting in its inbox."""

    entity: EntityState
    messages: list[EntityMessageInfo]
    now: int


class EntityClient:
    """Entity operations of the client; ``hub`` is the client's hub."""

    hub: TaskHub
    data_converter: payload.DataConverter | None

    def signal_entity(
        self,
        entity_id: EntityInstanceId | str,
        operation_name: str,
        input: Any = None,
        *,
        signal_time: datetime | timedelta | int | None = None,
    ) -> None:
        """Queue a one-way operation; with ``signal_time`` (a time, a delay, or epoch µs) it runs then."""
        parsed = _entity_id(entity_id)
        if not operation_name:
            raise UsageError("an entity operation needs a name")
        what = f"the input of operation {operation_name!r} on entity {str(parsed)!r}"
        encoded = payload.encode(input, what=what, converter=self.data_converter)
        fire_at = self._fire_at(signal_time)
        self.hub.signal_entity(
            parsed, operation_name, encoded, fire_at=fire_at, trace_context=current_traceparent()
        )

    def get_entity(
        self, entity_id: EntityInstanceId | str, *, include_state: bool = True
    ) -> EntityState | None:
        """The entity, or None when no message was ever sent to it (or it was cleaned away)."""
        return self.hub.get_entity(_entity_id(entity_id), include_state=include_state)

    def get_entity_state(self, entity_id: EntityInstanceId | str, type_hint: Any = None) -> Any:
        """The entity's state decoded by the client's converter, shaped as ``type_hint`` (None when it
        has none)."""
        found = self.get_entity(entity_id)
        if found is None or found.state is None:
            return None
        return payload.decode(found.state, type_hint, converter=self.data_converter)

    def entity_details(self, entity_id: EntityInstanceId | str) -> EntityDetails | None:
        parsed = _entity_id(entity_id)
        found = self.hub.get_entity(parsed)
        if found is None:
            return None
        return EntityDetails(found, self.hub.entity_messages(parsed), self.hub.now())

    def query_entities(self, query: EntityQuery | None = None) -> EntityPage:
        """One page; pass the page's ``next_cursor`` as the next query's ``cursor``."""
        return self.hub.query_entities(query or EntityQuery())

    def iter_entities(self, query: EntityQuery | None = None) -> Iterator[EntityState]:
        """Every entity the query matches, a page at a time."""
        current = query or EntityQuery()
        while True:
            page = self.hub.query_entities(current)
            yield from page.entities
            if page.next_cursor is None:
                return
            current = replace(current, cursor=page.next_cursor)

    def clean_entity_storage(
        self,
        *,
        remove_empty_entities: bool = True,
        release_orphaned_locks: bool = True,
        dry_run: bool = False,
    ) -> EntityCleanup:
        """Release locks held by orchestrations that are gone or finished, then remove empty entities."""
        return self.hub.clean_entity_storage(
            remove_empty=remove_empty_entities, release_orphaned_locks=release_orphaned_locks, dry_run=dry_run
        )

    def _with_lock_holders(self, request: PendingEntityRequest) -> PendingEntityRequest:
        """A waiting lock request, with who holds each of its entities now."""
        if request.kind != "lock" or request.state != "waiting":
            return request
        holders: list[str | None] = []
        for entity_id in request.entity_ids:
            found = self.hub.get_entity(entity_id, include_state=False)
            holders.append(None if found is None or found.lock is None else found.lock.instance_id)
        return replace(request, held_by=tuple(holders))

    def _fire_at(self, when: datetime | timedelta | int | None) -> int | None:
        if when is None or isinstance(when, int):
            return when
        if isinstance(when, timedelta):
            return self.hub.now() + int(when.total_seconds() * 1_000_000)
        aware = when if when.tzinfo is not None else when.replace(tzinfo=UTC)  # naive: UTC, as the client
        return int(aware.timestamp() * 1_000_000)


def _entity_id(value: EntityInstanceId | str) -> EntityInstanceId:
    try:
        return EntityInstanceId.of(value)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
