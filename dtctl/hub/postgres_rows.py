"""Rows of the PostgreSQL hub to records (leased work items), and the filters of list and purge."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from dtctl.core.history import ALL_STATUSES, decode_event
from dtctl.errors import UsageError
from dtctl.hub import postgres_queries as q
from dtctl.hub.base import InboxMessage, InstanceQuery, OrchestrationWorkItem
from dtctl.hub.sqlite_rows import decode_cursor

Conn = psycopg.Connection[tuple[Any, ...]]


def group_leased(rows: Sequence[Sequence[Any]]) -> list[tuple[Sequence[Any], list[Sequence[Any]]]]:
    """Rows of LEASE_ORCHESTRATIONS (one per message, ordered by instance) to (head, messages)."""
    groups: list[tuple[Sequence[Any], list[Sequence[Any]]]] = []
    for row in rows:
        if not groups or groups[-1][0][0] != row[0]:
            groups.append((row, []))
        if row[8] is not None:
            groups[-1][1].append(row[8:])
    return groups


def work_item(
    head: Sequence[Any], messages: list[Sequence[Any]]
) -> tuple[OrchestrationWorkItem | None, list[int]]:
    instance_id, execution_id, name, status, history_length, token, expires, now = head[:8]
    fresh: list[Sequence[Any]] = []
    stale: list[int] = []
    for m in messages:  # (id, execution_id, kind, payload, dequeue_count)
        if m[1] is None or m[1] == execution_id:
            fresh.append(m)
        else:
            stale.append(m[0])  # a completion or timer of an execution that is gone: never handed out
    if not fresh:
        return None, stale
    # FIFO, except that an execution's start always comes first (after continue-as-new, events raised
    # during the ending episode are older than the new execution's start).
    fresh.sort(key=lambda m: (m[2] != "execution_started", m[0]))
    item = OrchestrationWorkItem(
        instance_id=instance_id,
        execution_id=execution_id,
        name=name,
        status=status,
        lease_token=token,
        lease_expires=expires,
        leased_at=now,
        history_length=history_length,
        messages=tuple(InboxMessage(m[0], decode_event(m[3]), m[4]) for m in fresh),
    )
    return item, stale


def drop_stale(conn: Conn, stale: list[int], empty: list[tuple[str, str]]) -> None:
    if stale:
        conn.execute("DELETE FROM new_events WHERE id = ANY(%s::bigint[])", (stale,))
    if empty:
        conn.execute(q.RELEASE_INSTANCES, ([e[0] for e in empty], [e[1] for e in empty]))


def list_filters(query: InstanceQuery) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if query.statuses:
        unknown = [s for s in query.statuses if s not in ALL_STATUSES]
        if unknown:
            raise UsageError(f"unknown status {unknown[0]!r}; use one of {', '.join(ALL_STATUSES)}")
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
    if query.cursor:
        created_at, instance_id = decode_cursor(query.cursor)
        clauses.append("(created_at, instance_id) < (%s, %s)")
        params.extend((created_at, instance_id))
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", params
