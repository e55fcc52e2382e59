"""The entity queue of the PostgreSQL hub (:class:`dtctl.hub.roles.EntityOperations`), mixed into the hub.

A lease is two statements in one transaction: lease up to ``limit`` entities (``FOR UPDATE SKIP
LOCKED``: an entity another worker is leasing is passed over), then take their visible messages.
Batches commit through the shared plan of :mod:`dtctl.hub.sql.entities`, in entity-id order (two
workers committing overlapping sets never deadlock), fenced by the lease token.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import replace
from typing import Any

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
from dtctl.hub.postgres import ops
from dtctl.hub.postgres import queries as q
from dtctl.hub.postgres.ops import Conn
from dtctl.hub.postgres.parts import PostgresHubParts
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


class PostgresEntityDialect:
    """The PostgreSQL half of the entity write steps (:class:`~dtctl.hub.sql.entities.EntityDialect`)."""

    def __init__(self, where: str) -> None:
        self.where = where

    def send_entity_messages(self, conn: Conn, rows: Sequence[EntityMessageRow]) -> None:
        ops.DIALECT.send_entity_messages(conn, rows)

    def store_entity(self, conn: Conn, now: int, item: EntityWorkItem, result: EntityBatchResult) -> bool:
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
        return conn.execute(q.STORE_ENTITY, params).fetchone() is not None

    def settle_entity_messages(
        self, conn: Conn, entity_id: str, consumed: Sequence[int], parked: Sequence[int], locked: bool
    ) -> None:
        if consumed:
            conn.execute(q.DELETE_ENTITY_MESSAGES, (entity_id, list(consumed)))
        if not locked:
            conn.execute(q.UNPARK_ENTITY_MESSAGES, (entity_id,))
        elif parked:
            conn.execute(q.PARK_ENTITY_MESSAGES, (entity_id, list(parked)))

    def respond(self, conn: Conn, rows: Sequence[EventRow]) -> None:
        conn.execute(
            q.INSERT_RESPONSES_IF_LIVE,
            ops.columns(
                [(r.instance_id, r.execution_id, r.kind, r.task_id, r.payload, r.visible_at) for r in rows], 6
            ),
        )

    def start_orchestrations(self, conn: Conn, now: int, instances: Sequence[NewInstance]) -> None:
        ops.create_instances(conn, now, instances, "skip", self.where)


class PostgresEntities(PostgresHubParts):
    """Entity storage of :class:`~dtctl.hub.postgres.PostgresTaskHub` (mixed in)."""

    url: str

    # --- worker ---------------------------------------------------------------------------------------

    def lease_entities(
        self, owner: str, names: Collection[str] | None, *, limit: int, lease_seconds: float
    ) -> list[EntityWorkItem]:
        if limit < 1 or (names is not None and not names):
            return []
        params = {
            "now": self._now_param(),
            "owner": owner,
            "lease_us": int(lease_seconds * 1_000_000),
            "names": None if names is None else sorted(n.lower() for n in names),
            "limit": limit,
        }
        return self._run(lambda conn: _lease(conn, params), transaction=True)

    def complete_entities(self, batches: Sequence[EntityBatch]) -> list[bool]:
        if not batches:
            return []
        dialect = PostgresEntityDialect(self.url)
        order = sorted(range(len(batches)), key=lambda n: batches[n].item.entity_id)

        def work(conn: Conn) -> list[bool]:
            now = self._now_in(conn)
            done = [False] * len(batches)
            for n in order:
                done[n] = shared.commit_batch(dialect, conn, now, batches[n])
            self._log_work(conn, now, entity_log_rows(batches, done, now))
            return done

        return self._run(work, transaction=True, fault="entity", durable=True)

    def abandon_entity(self, item: EntityWorkItem) -> None:
        self._run(
            lambda conn: conn.execute(q.RELEASE_ENTITY, (item.entity_id, item.lease_token)), idempotent=True
        )

    def renew_entity_leases(self, items: Sequence[EntityWorkItem], lease_seconds: float) -> list[str]:
        if not items:
            return []
        params = {
            "now": self._now_param(),
            "lease_us": int(lease_seconds * 1_000_000),
            "ids": [i.entity_id for i in items],
            "tokens": [i.lease_token for i in items],
        }
        kept = self._run(
            lambda conn: {first_from_row(r) for r in conn.execute(q.RENEW_ENTITIES, params).fetchall()},
            idempotent=True,
        )
        return [i.entity_id for i in items if i.entity_id not in kept]

    def next_visible_entity(self, names: Collection[str] | None) -> int | None:
        if names is not None and not names:
            return None
        params = {
            "now": self._now_param(),
            "names": None if names is None else sorted(n.lower() for n in names),
        }
        row = self._read(lambda conn: conn.execute(q.NEXT_VISIBLE_ENTITY, params).fetchone())
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
        parsed = str(EntityInstanceId.of(entity_id))
        message = EntityMessage(
            id=0, kind=MessageKind.SIGNAL, operation=operation, input=input, trace_context=trace_context
        )

        def work(conn: Conn) -> None:
            row = shared.message_row(parsed, message, self._now_in(conn), fire_at)
            ops.DIALECT.send_entity_messages(conn, [row])

        self._write(work)

    def get_entity(
        self, entity_id: EntityInstanceId | str, *, include_state: bool = True
    ) -> EntityState | None:
        sql = select_entity_sql("%s", include_state)
        key = str(EntityInstanceId.of(entity_id))
        row = self._read(lambda conn: conn.execute(sql, (key,)).fetchone())
        return None if row is None else entity_from_row(row)

    def query_entities(self, query: EntityQuery) -> EntityPage:
        sql, params = query_sql(query, "%s")
        rows = self._read(lambda conn: conn.execute(sql, params).fetchall())
        page = [entity_from_row(r) for r in rows[: query.limit]]
        more = len(rows) > query.limit
        return EntityPage(page, page[-1].entity_id if more and page else None)

    def entity_messages(self, entity_id: EntityInstanceId | str) -> list[EntityMessageInfo]:
        key = str(EntityInstanceId.of(entity_id))
        rows = self._read(lambda conn: conn.execute(q.SELECT_ENTITY_MESSAGES, (key,)).fetchall())
        return [message_info_from_row(r) for r in rows]

    def entity_health(self) -> EntityHealth:
        def work(conn: Conn) -> EntityHealth:
            now = self._now_in(conn)
            row = conn.execute(_HEALTH, (now, now, now)).fetchone()
            assert row is not None
            return shared.health_from_row(now, row)

        return self._read(work)

    def clean_entity_storage(
        self, *, remove_empty: bool = True, release_orphaned_locks: bool = True, dry_run: bool = False
    ) -> EntityCleanup:
        def work(conn: Conn) -> EntityCleanup:
            orphaned: list[str] = []
            if release_orphaned_locks:
                orphaned = [first_from_row(r) for r in conn.execute(q.ORPHANED_ENTITY_LOCKS).fetchall()]
                if orphaned and not dry_run:
                    conn.execute(q.RELEASE_ENTITY_LOCKS, (orphaned,))
                    conn.execute(q.UNPARK_ENTITIES, (orphaned,))
            empty: list[str] = []
            if remove_empty:
                params = {"now": self._now_param()}
                empty = [first_from_row(r) for r in conn.execute(q.EMPTY_ENTITIES, params).fetchall()]
                if empty and not dry_run:
                    conn.execute(q.DELETE_ENTITIES, (empty,))
            return EntityCleanup(len(empty), len(orphaned))

        return self._write(work)


_HEALTH = entity_health_sql("false", "%s")


def _lease(conn: Conn, params: dict[str, Any]) -> list[EntityWorkItem]:
    rows = conn.execute(q.LEASE_ENTITIES, params).fetchall()
    if not rows:
        return []
    heads = sorted((_leased_head(row) for row in rows), key=lambda head: head.entity_id)
    take = {
        "ids": [head.entity_id for head in heads],
        "limits": [None if (n := shared.batch_limit(head)) < 0 else n for head in heads],
        "at": heads[0].leased_at,
    }
    messages: dict[str, list[EntityMessage]] = {head.entity_id: [] for head in heads}
    for entity_id, *columns in conn.execute(q.TAKE_ENTITY_MESSAGES, take).fetchall():
        messages[entity_id].append(shared.message_from_row(columns, columns[10]))
    return [replace(head, messages=tuple(messages[head.entity_id])) for head in heads]


def _leased_head(row: Sequence[Any]) -> EntityWorkItem:
    """A row of lease_entities: the entity's id, the columns leased_entity reads, its new lease."""
    entity_id, name, key, state, lock_instance, lock_execution, lock_section, dequeue_count = row[:8]
    token, expires, at = row[8:11]
    columns = (name, key, state, lock_instance, lock_execution, lock_section, dequeue_count)
    return shared.leased_entity(entity_id, columns, (), token=token, expires=expires, at=at)
