"""Rows of the PostgreSQL hub to records (leased work items), and the filters of list."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import psycopg

from dtctl.core.status import STORED
from dtctl.errors import UsageError
from dtctl.hub.base import InstanceQuery, OrchestrationWorkItem
from dtctl.hub.postgres import queries as q
from dtctl.hub.sql.instances import version_tag_filters
from dtctl.hub.sql.records import MessageRow, decode_cursor

Conn = psycopg.Connection[tuple[Any, ...]]


class LeasedHead(NamedTuple):
    """The instance columns of a ``LEASE_ORCHESTRATIONS`` row (its first eight, and the last)."""

    instance_id: str
    execution_id: str
    name: str
    status: str
    history_length: int
    lease_token: str
    lease_expires: int
    now: int
    version: str | None


class LeasedGroup(NamedTuple):
    head: LeasedHead
    messages: list[MessageRow]


def leased_from_row(row: Sequence[Any]) -> tuple[LeasedHead, MessageRow | None]:
    """One ``LEASE_ORCHESTRATIONS`` row: the leased instance, and one taken message (None: none taken)."""
    head = LeasedHead(row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[14])
    return head, None if row[8] is None else MessageRow.from_row(row[8:14])


def group_leased(rows: Sequence[Sequence[Any]]) -> list[LeasedGroup]:
    """Rows of LEASE_ORCHESTRATIONS (one per message, ordered by instance) to one group per instance."""
    groups: list[LeasedGroup] = []
    for head, message in map(leased_from_row, rows):
        if not groups or groups[-1].head.instance_id != head.instance_id:
            groups.append(LeasedGroup(head, []))
        if message is not None:
            groups[-1].messages.append(message)
    return groups


def work_item(group: LeasedGroup) -> tuple[OrchestrationWorkItem | None, list[int]]:
    head = group.head
    fresh = [m for m in group.messages if m.is_for(head.execution_id)]
    # A completion or timer of an execution that is gone: never handed out.
    stale = [m.id for m in group.messages if not m.is_for(head.execution_id)]
    if not fresh:
        return None, stale
    if len(fresh) > 1:
        fresh.sort(key=MessageRow.sort_key)
    item = OrchestrationWorkItem(
        instance_id=head.instance_id,
        execution_id=head.execution_id,
        name=head.name,
        status=head.status,
        lease_token=head.lease_token,
        lease_expires=head.lease_expires,
        leased_at=head.now,
        history_length=head.history_length,
        messages=tuple(m.message() for m in fresh),
        version=head.version,
    )
    return item, stale


def drop_stale(conn: Conn, stale: list[int], empty: list[LeasedHead]) -> None:
    """Delete stale messages; give back instances that were leased with nothing fresh to do."""
    if stale:
        conn.execute(q.DELETE_EVENTS_BY_ID, (stale,))
    if empty:
        conn.execute(q.RELEASE_INSTANCES, ([e.instance_id for e in empty], [e.lease_token for e in empty]))


def list_filters(query: InstanceQuery) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if query.statuses:
        unknown = [s for s in query.statuses if s not in STORED]
        if unknown:
            raise UsageError(f"unknown status {unknown[0]!r}; use one of {', '.join(STORED)}")
        clauses.append("status = ANY(%s)")
        params.append(list(query.statuses))
    if query.name is not None:
        clauses.append("name = %s")
        params.append(query.name)
    if query.prefix:
        clauses.append("left(instance_id, %s) = %s")
        params.extend((len(query.prefix), query.prefix))
    if query.created_after is not None:
        clauses.append("created_at > %s")
        params.append(query.created_after)
    if query.created_before is not None:
        clauses.append("created_at < %s")
        params.append(query.created_before)
    version_tag_filters(query, clauses, params, "%s")
    if query.cursor:
        created_at, instance_id = decode_cursor(query.cursor)
        clauses.append("(created_at, instance_id) < (%s, %s)")
        params.extend((created_at, instance_id))
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", params
