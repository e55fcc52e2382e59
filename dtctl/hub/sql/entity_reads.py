"""Reading entities, for both hubs: the columns of an entity, its filters and paging (``query_entities``).

The statements are built here with the backend's parameter marker (``?`` or ``%s``); the empty-entity
rule is the one ``clean_entity_storage`` removes by: no state, no lock, nothing in the inbox.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dtctl.errors import UsageError
from dtctl.hub.entity_records import EntityMessageInfo, EntityQuery, EntityState
from dtctl.hub.sql.entities import lock_from_columns, message_from_row

_BACKLOG = "(SELECT count(*) FROM entity_inbox AS m WHERE m.entity_id = e.entity_id)"


def entity_columns(include_state: bool) -> str:
    state = "e.state" if include_state else "NULL"
    return (
        f"e.entity_id, e.name, e.key, {state}, e.created_at, e.updated_at, e.lock_instance_id,"
        f" e.lock_execution_id, e.lock_section_id, {_BACKLOG}, e.lease_owner, e.lease_expires,"
        " e.dequeue_count"
    )


def entity_from_row(row: Sequence[Any]) -> EntityState:
    return EntityState(
        entity_id=row[0],
        name=row[1],
        key=row[2],
        state=row[3],
        created_at=row[4],
        last_modified=row[5],
        lock=lock_from_columns(row[6], row[7], row[8]),
        backlog=int(row[9]),
        lease_owner=row[10],
        lease_expires=row[11],
        dequeue_count=row[12],
    )


def message_info_from_row(row: Sequence[Any]) -> EntityMessageInfo:
    """A row of ``select_entity_messages``: the message columns, then visible_at and parked."""
    return EntityMessageInfo(message_from_row(row), row[10], bool(row[11]))


def select_entity_sql(marker: str, include_state: bool) -> str:
    return f"SELECT {entity_columns(include_state)} FROM entities AS e WHERE e.entity_id = {marker}"


def query_sql(query: EntityQuery, marker: str) -> tuple[str, list[Any]]:
    """One page of ``query`` (one row more than the page, to know whether another follows)."""
    if query.limit < 1:
        raise UsageError(f"an entity query's limit must be at least 1, not {query.limit}")
    clauses: list[str] = []
    params: list[Any] = []

    def where(clause: str, *values: Any) -> None:
        clauses.append(clause.replace("?", marker))
        params.extend(values)

    if query.name:
        where("e.name = ?", query.name.lower())
    if query.prefix:
        # The range narrows the primary-key scan; substr makes the match exact.
        where(
            "e.entity_id >= ? AND substr(e.entity_id, 1, ?) = ?",
            query.prefix,
            len(query.prefix),
            query.prefix,
        )
    if query.modified_after is not None:
        where("e.updated_at > ?", query.modified_after)
    if query.modified_before is not None:
        where("e.updated_at < ?", query.modified_before)
    if query.cursor:
        where("e.entity_id > ?", query.cursor)
    if not query.include_empty:
        clauses.append(f"(e.state IS NOT NULL OR e.lock_instance_id IS NOT NULL OR {_BACKLOG} > 0)")
    text = f"SELECT {entity_columns(query.include_state)} FROM entities AS e"
    if clauses:
        text += " WHERE " + " AND ".join(clauses)
    text += f" ORDER BY e.entity_id LIMIT {marker}"
    params.append(query.limit + 1)
    return text, params


def entity_health_sql(false: str, marker: str) -> str:
    """One row: entities, ready ones (a visible message not waiting for a lock), leased, locked,
    orphaned locks (holder gone, finished or on another execution), the oldest ready message's visible
    time among unleased entities, and the highest dequeue count. ``false``: the backend's literal for
    an unparked message; parameters (``marker`` each): the visibility time, the lease time (the
    time leases are judged by; SQLite's lease clock), the visibility time."""
    ready = f"m.visible_at <= {marker} AND m.parked = {false}"
    return f"""
SELECT
    (SELECT count(*) FROM entities),
    (SELECT count(DISTINCT m.entity_id) FROM entity_inbox AS m WHERE {ready}),
    (SELECT count(*) FROM entities WHERE lease_expires IS NOT NULL AND lease_expires > {marker}),
    (SELECT count(*) FROM entities WHERE lock_instance_id IS NOT NULL),
    (SELECT count(*) FROM entities AS e LEFT JOIN instances AS i ON i.instance_id = e.lock_instance_id
     WHERE e.lock_instance_id IS NOT NULL
       AND (i.instance_id IS NULL OR i.status IN ('COMPLETED', 'FAILED', 'TERMINATED')
            OR (e.lock_execution_id IS NOT NULL AND i.execution_id <> e.lock_execution_id))),
    (SELECT min(m.visible_at) FROM entity_inbox AS m JOIN entities AS e ON e.entity_id = m.entity_id
     WHERE m.visible_at <= {marker} AND m.parked = {false} AND e.lease_expires IS NULL),
    (SELECT COALESCE(max(dequeue_count), 0) FROM entities)
"""
