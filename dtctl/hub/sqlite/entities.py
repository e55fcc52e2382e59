"""The entity queue of the SQLite hub (:class:`dtctl.hub.roles.EntityOperations`), mixed into the hub.

Leasing follows instances: pick unleased entities with a ready message (oldest first), lease each with
a fresh token, take its visible messages in FIFO order. A batch commits through the shared plan of
:mod:`dtctl.hub.sql.entities`, fenced by the token, inside the caller's transaction (group commit).
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Collection, Sequence
from dataclasses import replace

from dtctl.core.entity_exec import EntityBatchResult, EntityMessage, MessageKind
from dtctl.core.entity_id import EntityInstanceId
from dtctl.hub.entity_records import (
    EntityBatch,
    EntityCleanup,
    EntityHealth,
    EntityMessageInfo,
    EntityPage,
    EntityQuery,
    EntityState,
    EntityWorkItem,
)
from dtctl.hub.records import NewInstance
from dtctl.hub.sql import entities as shared
from dtctl.hub.sql.entity_reads import (
    entity_from_row,
    entity_health_sql,
    message_info_from_row,
    query_sql,
    select_entity_sql,
)
from dtctl.hub.sql.inspect import entity_log_rows
from dtctl.hub.sql.records import EntityMessageRow, EventRow, first_from_row
from dtctl.hub.sqlite import ops
from dtctl.hub.sqlite import queries as q
from dtctl.hub.sqlite.clock import wall_lease
from dtctl.hub.sqlite.parts import SqliteHubParts


class SqliteEntityDialect:
    """The SQLite half of the entity write steps (:class:`~dtctl.hub.sql.entities.EntityDialect`)."""

    def __init__(self, where: str) -> None:
        self.where = where

    def send_entity_messages(self, conn: sqlite3.Connection, rows: Sequence[EntityMessageRow]) -> None:
        ops.DIALECT.send_entity_messages(conn, rows)

    def store_entity(
        self, conn: sqlite3.Connection, now: int, item: EntityWorkItem, result: EntityBatchResult
    ) -> bool:
        holder, execution, section = shared.lock_columns(result.lock)
        params = {
            "state": result.state,
            "lock_instance_id": holder,
            "lock_execution_id": execution,
            "lock_section_id": section,
            "applied": bool(result.consumed),
            "now": now,
            "entity_id": item.entity_id,
            "token": item.lease_token,
        }
        return conn.execute(q.STORE_ENTITY, params).rowcount == 1

    def settle_entity_messages(
        self,
        conn: sqlite3.Connection,
        entity_id: str,
        consumed: Sequence[int],
        parked: Sequence[int],
        locked: bool,
    ) -> None:
        conn.executemany(q.DELETE_ENTITY_MESSAGE, [(m, entity_id) for m in consumed])
        if locked:
            conn.executemany(q.PARK_ENTITY_MESSAGE, [(m, entity_id) for m in parked])
        else:
            conn.execute(q.UNPARK_ENTITY_MESSAGES, (entity_id,))

    def respond(self, conn: sqlite3.Connection, rows: Sequence[EventRow]) -> None:
        conn.executemany(
            q.INSERT_RESULT_IF_LIVE,
            [
                {
                    "instance_id": r.instance_id,
                    "execution_id": r.execution_id,
                    "kind": r.kind,
                    "task_id": r.task_id,
                    "payload": r.payload,
                    "now": r.visible_at,
                }
                for r in rows
            ],
        )

    def start_orchestrations(
        self, conn: sqlite3.Connection, now: int, instances: Sequence[NewInstance]
    ) -> None:
        ops.create_instances(conn, now, instances, "skip", self.where)


class SqliteEntities(SqliteHubParts):
    """Entity storage of :class:`~dtctl.hub.sqlite.SqliteTaskHub` (mixed in)."""

    url: str

    # --- worker ---------------------------------------------------------------------------------------

    def lease_entities(
        self, owner: str, names: Collection[str] | None, *, limit: int, lease_seconds: float
    ) -> list[EntityWorkItem]:
        if limit < 1 or (names is not None and not names):
            return []
        names_json = None if names is None else json.dumps(sorted(n.lower() for n in names))
        with self._write(durable=False) as conn:
            clocks = self._visibility(self.now())
            expires = clocks["lease_now"] + int(lease_seconds * 1_000_000)
            picked = _pick(conn, clocks, names_json, limit)
            return [_lease_one(conn, entity_id, owner, clocks, expires) for entity_id in picked]

    def complete_entities(self, batches: Sequence[EntityBatch]) -> list[bool]:
        if not batches:
            return []
        dialect = SqliteEntityDialect(self.url)
        with self._write(fault="entity") as conn:
            now = self.now()
            stored = [shared.commit_batch(dialect, conn, now, batch) for batch in batches]
            self._log_work(conn, now, entity_log_rows(batches, stored, now))
            return stored

    def abandon_entity(self, item: EntityWorkItem) -> None:
        with self._write(durable=False) as conn:
            conn.execute(q.RELEASE_ENTITY, (item.entity_id, item.lease_token))

    def renew_entity_leases(self, items: Sequence[EntityWorkItem], lease_seconds: float) -> list[str]:
        if not items:
            return []
        with self._write(durable=False) as conn:
            expires = self.lease_now() + int(lease_seconds * 1_000_000)
            return [
                i.entity_id
                for i in items
                if conn.execute(q.RENEW_ENTITY, (expires, i.entity_id, i.lease_token)).rowcount == 0
            ]

    def next_visible_entity(self, names: Collection[str] | None) -> int | None:
        if names is not None and not names:
            return None
        params = {
            "lease_now": self.lease_now(),
            "names": None if names is None else json.dumps(sorted(n.lower() for n in names)),
        }
        with self._edge() as conn:
            row = conn.execute(q.NEXT_VISIBLE_ENTITY, params).fetchone()
        return None if row is None else int(first_from_row(row))

    # --- client ---------------------------------------------------------------------------------------

    def signal_entity(
        self,
        entity_id: EntityInstanceId | str,
        operation: str,
        input: str | None,
        *,
        fire_at: int | None = None,
        trace_context: str | None = None,
    ) -> None:
        parsed = EntityInstanceId.of(entity_id)
        with self._write() as conn:
            now = self.now()
            message = EntityMessage(
                id=0, kind=MessageKind.SIGNAL, operation=operation, input=input, trace_context=trace_context
            )
            ops.DIALECT.send_entity_messages(conn, [shared.message_row(str(parsed), message, now, fire_at)])

    def get_entity(
        self, entity_id: EntityInstanceId | str, *, include_state: bool = True
    ) -> EntityState | None:
        with self._edge() as conn:
            row = conn.execute(
                select_entity_sql("?", include_state), (str(EntityInstanceId.of(entity_id)),)
            ).fetchone()
        return None if row is None else wall_lease(entity_from_row(row), self.lease_skew())

    def query_entities(self, query: EntityQuery) -> EntityPage:
        sql, params = query_sql(query, "?")
        with self._edge() as conn:
            rows = conn.execute(sql, params).fetchall()
        skew = self.lease_skew()
        page = [wall_lease(entity_from_row(r), skew) for r in rows[: query.limit]]
        more = len(rows) > query.limit
        return EntityPage(page, page[-1].entity_id if more and page else None)

    def entity_messages(self, entity_id: EntityInstanceId | str) -> list[EntityMessageInfo]:
        with self._edge() as conn:
            rows = conn.execute(q.SELECT_ENTITY_MESSAGES, (str(EntityInstanceId.of(entity_id)),)).fetchall()
        return [message_info_from_row(r) for r in rows]

    def entity_health(self) -> EntityHealth:
        clocks = self._visibility(self.now())
        visible_by, lease_now = clocks["visible_by"], clocks["lease_now"]
        with self._edge() as conn:
            row = conn.execute(_HEALTH, (visible_by, lease_now, visible_by)).fetchone()
        return shared.health_from_row(clocks["now"], row)

    def clean_entity_storage(
        self, *, remove_empty: bool = True, release_orphaned_locks: bool = True, dry_run: bool = False
    ) -> EntityCleanup:
        with self._write() as conn:
            orphaned = (
                [first_from_row(r) for r in conn.execute(q.ORPHANED_ENTITY_LOCKS)]
                if release_orphaned_locks
                else []
            )
            if not dry_run:
                for entity_id in orphaned:
                    conn.execute(q.RELEASE_ENTITY_LOCK, (entity_id,))
                    conn.execute(q.UNPARK_ENTITY_MESSAGES, (entity_id,))
            empty = (
                [first_from_row(r) for r in conn.execute(q.EMPTY_ENTITIES, {"lease_now": self.lease_now()})]
                if remove_empty
                else []
            )
            if not dry_run:
                conn.executemany(q.DELETE_ENTITY, [(e,) for e in empty])
        return EntityCleanup(len(empty), len(orphaned))


_HEALTH = entity_health_sql("0", "?")


def _pick(conn: sqlite3.Connection, clocks: dict[str, int], names_json: str | None, limit: int) -> list[str]:
    picked: dict[str, None] = {}
    cursor = conn.execute(q.PICK_ENTITIES, clocks | {"names": names_json})
    try:
        for (entity_id,) in cursor:
            picked[entity_id] = None
            if len(picked) >= limit:
                break
    finally:
        cursor.close()
    return list(picked)


def _lease_one(
    conn: sqlite3.Connection, entity_id: str, owner: str, clocks: dict[str, int], expires: int
) -> EntityWorkItem:
    token, now = os.urandom(16).hex(), clocks["now"]
    row = conn.execute(q.LEASE_ENTITY, (owner, expires, token, now, entity_id)).fetchone()
    head = shared.leased_entity(entity_id, row, (), token=token, expires=expires, at=now)
    take = clocks | {"entity_id": entity_id, "limit": shared.batch_limit(head)}
    rows = conn.execute(q.TAKE_ENTITY_MESSAGES, take).fetchall()
    return replace(head, messages=tuple(shared.message_from_row(r, r[10]) for r in rows))
