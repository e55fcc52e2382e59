"""The entities pages' data: one keyset page of entities, and one entity with its inbox.

Read through :class:`dtctl.client.TaskHubClient` only (``query_entities`` and ``entity_details``, the
reads ``dtctl entity list`` / ``show`` make); nothing here knows about HTTP or templates.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from dtctl.client import TaskHubClient
from dtctl.client_entities import EntityDetails
from dtctl.core.entity_id import EntityInstanceId
from dtctl.dashboard import fmt
from dtctl.errors import InstanceNotFound, UsageError
from dtctl.hub.base import EntityPage, EntityQuery

PAGE_SIZES = (25, 50, 100, 200)
STATE_PREVIEW = 120  # characters of an entity's state shown in the list


@dataclass(frozen=True, slots=True, kw_only=True)
class EntityFilters:
    name: str | None = None
    prefix: str | None = None
    include_empty: bool = False
    limit: int = 50
    cursor: str | None = None

    def query_string(self, cursor: str | None) -> str:
        """The filters as a URL query, on the page that starts after ``cursor``."""
        pairs = [(k, v) for k, v in (("name", self.name), ("prefix", self.prefix)) if v]
        if self.include_empty:
            pairs.append(("include_empty", "1"))
        if self.limit != 50:
            pairs.append(("limit", str(self.limit)))
        if cursor:
            pairs.append(("cursor", cursor))
        return urlencode(pairs)


def parse_filters(params: Mapping[str, Any]) -> EntityFilters:
    try:
        limit = int(params.get("limit") or 50)
    except ValueError:
        raise UsageError("limit must be a number") from None
    return EntityFilters(
        name=_text(params.get("name")),
        prefix=_text(params.get("prefix")),
        include_empty=bool(params.get("include_empty")),
        limit=max(1, min(limit, max(PAGE_SIZES))),
        cursor=_text(params.get("cursor")),
    )


def list_page(client: TaskHubClient, filters: EntityFilters) -> EntityPage:
    return client.query_entities(
        EntityQuery(
            name=filters.name,
            prefix=filters.prefix,
            include_empty=filters.include_empty,
            limit=filters.limit,
            cursor=filters.cursor,
        )
    )


def state_preview(encoded: str | None) -> str:
    return "" if encoded is None else fmt.short(encoded, STATE_PREVIEW)


@dataclass(frozen=True, slots=True)
class EntityPageData:
    details: EntityDetails
    state: dict[str, Any] | None  # the payload block (pretty JSON, truncated with expand)
    messages: list[dict[str, Any]]


def entity_page(client: TaskHubClient, entity_id: str, hub_shown: str) -> EntityPageData:
    try:
        parsed = EntityInstanceId.parse(entity_id)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    details = client.entity_details(parsed)
    if details is None:
        raise InstanceNotFound(f"no entity {str(parsed)!r} in hub {hub_shown}")
    messages = [
        {
            "id": info.message.id,
            "kind": str(info.message.kind),
            "operation": info.message.operation or "",
            "sender": info.message.sender_instance_id,
            "input": fmt.short(info.message.input, 80),
            "visible_at": info.visible_at,
            "parked": info.parked,
        }
        for info in details.messages
    ]
    return EntityPageData(details, fmt.payload_view(details.entity.state), messages)


def _text(value: Any) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text or None
