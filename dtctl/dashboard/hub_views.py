"""The overview, workers and instances pages' data, read through the client and the hub inspector.

The overview is ``dtctl top``'s snapshot (:meth:`HubInspector.hub_snapshot` judged by
:func:`dtctl.ops.top_view`); the instance list is one keyset page of :meth:`TaskHubClient.list_instances`,
with the filters the hub does not answer itself (completed time) applied to a bounded scan.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from dtctl import ops
from dtctl.client import TaskHubClient
from dtctl.core.history import ALL_STATUSES, TERMINAL_STATUSES
from dtctl.core.tags import parse_tag
from dtctl.dashboard import fmt
from dtctl.errors import UsageError
from dtctl.hub.base import HubInspector, InstanceQuery, InstanceState

PAGE_SIZES = (25, 50, 100, 200)
# Rows a filtered page may scan past for a filter the hub cannot apply (completed time); the page then
# ends early with a cursor to go on, so a page never costs more than this many rows.
MAX_SCAN = 5000


def inspector(client: TaskHubClient) -> HubInspector | None:
    return client.hub  # every hub plays the inspector role


def overview(client: TaskHubClient, window: float, limits: tuple[int, int]) -> ops.TopView | None:
    found = inspector(client)
    if found is None:
        return None
    return ops.top_view(found.hub_snapshot(window), limits[0], limits[1])


def workers(client: TaskHubClient) -> tuple[list[ops.WorkerHealth], int]:
    hub = client.hub
    now = hub.now()
    found = inspector(client)
    leases = found.lease_holders() if found is not None else []
    health = ops.worker_health(hub.list_workers(), leases, now)
    health.sort(key=lambda h: (not h.live, h.info.worker_id))
    return health, now


# --- the instance list --------------------------------------------------------------------------------


def query_fields() -> frozenset[str]:
    """The filters this hub's InstanceQuery has: version and tag filters appear once it has them."""
    return frozenset(f.name for f in dataclasses.fields(InstanceQuery))


@dataclass(frozen=True, slots=True, kw_only=True)
class ListFilters:
    statuses: tuple[str, ...] = ()
    name: str | None = None
    prefix: str | None = None
    created_after: int | None = None
    created_before: int | None = None
    completed_after: int | None = None
    completed_before: int | None = None
    extra: tuple[tuple[str, str], ...] = ()  # filters passed through to the hub by name (version, tag)
    limit: int = 50
    cursor: str | None = None

    def query_string(self, **changes: Any) -> str:
        """The filters as a URL query (for the next page's link and the live refresh)."""
        from urllib.parse import urlencode

        values = dataclasses.replace(self, **changes) if changes else self
        pairs: list[tuple[str, str]] = [("status", s) for s in values.statuses]
        for key in ("name", "prefix"):
            if getattr(values, key):
                pairs.append((key, getattr(values, key)))
        for key in ("created_after", "created_before", "completed_after", "completed_before"):
            moment = getattr(values, key)
            if moment is not None:
                pairs.append((key, fmt.iso(moment)))
        pairs.extend(values.extra)
        if values.limit != 50:
            pairs.append(("limit", str(values.limit)))
        if values.cursor:
            pairs.append(("cursor", values.cursor))
        return urlencode(pairs)


EXTRA_FILTERS = ("version", "tag")  # InstanceQuery fields issue 12 adds; shown when the hub has them
# The InstanceQuery field each of those form inputs fills ("tag" takes one NAME=VALUE).
_QUERY_FIELD = {"version": "version", "tag": "tags"}


def extra_filters(fields: frozenset[str]) -> list[str]:
    """The form inputs this hub's InstanceQuery can take."""
    return [key for key in EXTRA_FILTERS if _QUERY_FIELD[key] in fields]


def _query_extra(extra: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    """The form's version / tag values as InstanceQuery arguments."""
    found: dict[str, Any] = {}
    for key, value in extra:
        found[_QUERY_FIELD[key]] = (parse_tag(value),) if key == "tag" else value
    return found


def parse_filters(params: Mapping[str, Any], getlist: Callable[[str], list[str]]) -> ListFilters:
    statuses = tuple(dict.fromkeys(s.upper() for s in getlist("status") if s))
    unknown = [s for s in statuses if s not in ALL_STATUSES]
    if unknown:
        raise UsageError(f"unknown status {unknown[0]!r}; use one of {', '.join(ALL_STATUSES)}")
    fields = query_fields()
    extra = tuple(
        (key, str(params[key])) for key in EXTRA_FILTERS if _QUERY_FIELD[key] in fields and params.get(key)
    )
    try:
        limit = int(params.get("limit") or 50)
    except ValueError:
        raise UsageError("limit must be a number") from None
    return ListFilters(
        statuses=statuses,
        name=_text(params.get("name")),
        prefix=_text(params.get("prefix")),
        created_after=_moment(params.get("created_after"), "created_after"),
        created_before=_moment(params.get("created_before"), "created_before"),
        completed_after=_moment(params.get("completed_after"), "completed_after"),
        completed_before=_moment(params.get("completed_before"), "completed_before"),
        extra=extra,
        limit=max(1, min(limit, max(PAGE_SIZES))),
        cursor=_text(params.get("cursor")),
    )


def _text(value: Any) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text or None


def _moment(value: Any, what: str) -> int | None:
    """An ISO time (a browser's ``datetime-local`` value is taken as UTC) as epoch µs."""
    text = _text(value)
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"{what} must be an ISO time such as 2025-01-31T12:00, not {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * fmt.US)


@dataclass(frozen=True, slots=True)
class ListPage:
    instances: list[InstanceState]
    next_cursor: str | None
    scanned: int


def list_page(client: TaskHubClient, filters: ListFilters) -> ListPage:
    """One page, newest first. The completed-time filter is applied here over at most MAX_SCAN rows."""
    statuses = filters.statuses
    post_filter = filters.completed_after is not None or filters.completed_before is not None
    if post_filter and not statuses:
        statuses = tuple(s for s in ALL_STATUSES if s in TERMINAL_STATUSES)
    extra = _query_extra(filters.extra)
    query = InstanceQuery(
        statuses=statuses,
        name=filters.name,
        prefix=filters.prefix,
        created_after=filters.created_after,
        created_before=filters.created_before,
        limit=filters.limit,
        cursor=filters.cursor,
        **extra,  # version / tags: only fields InstanceQuery has (parse_filters)
    )
    if not post_filter:
        page = client.list_instances(query)
        return ListPage(page.instances, page.next_cursor, len(page.instances))
    return _scan(client, query, filters)


def _scan(client: TaskHubClient, query: InstanceQuery, filters: ListFilters) -> ListPage:
    def keep(state: InstanceState) -> bool:
        done = state.completed_at
        if done is None:
            return False
        if filters.completed_after is not None and done < filters.completed_after:
            return False
        return filters.completed_before is None or done < filters.completed_before

    found: list[InstanceState] = []
    scanned = 0
    cursor = query.cursor
    batch = max(filters.limit, 200)
    while len(found) < filters.limit and scanned < MAX_SCAN:
        page = client.list_instances(dataclasses.replace(query, limit=batch, cursor=cursor))
        for index, state in enumerate(page.instances):
            scanned += 1
            if keep(state):
                found.append(state)
                if len(found) == filters.limit:
                    # Resume right after this row: the hub's own cursor for a page that ends on it.
                    upto = client.list_instances(dataclasses.replace(query, limit=index + 1, cursor=cursor))
                    return ListPage(found, upto.next_cursor, scanned)
        cursor = page.next_cursor
        if cursor is None:
            return ListPage(found, None, scanned)
    return ListPage(found, cursor, scanned)


def counts_line(view: ops.TopView) -> dict[str, Any]:
    """Headline numbers for the overview's cards."""
    s = view.snapshot
    window = s.window_seconds
    return {
        "pending": s.instances.pending,
        "running": s.instances.running,
        "suspended": s.instances.suspended,
        "completed_per_s": fmt.rate(s.instances.completed, window),
        "episodes_per_s": fmt.rate(s.orchestration_work.finished, window),
        "activities_per_s": fmt.rate(s.activity_work.finished, window),
        "failed": s.instances.failed,
        "activity_failures": s.activity_work.failed,
    }
