"""The instance operations of :class:`~dtctl.hub.sqlite.SqliteTaskHub` that clients call (mixed in):
start, raise, terminate, suspend and resume, read, list, history, purge, rewind, import."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from dtctl.core.history import ALL_STATUSES, EventRaised, ExecutionResumed, ExecutionSuspended
from dtctl.errors import UsageError
from dtctl.hub.base import (
    ActivityWorkItem,
    CreateOutcome,
    HistoryRecord,
    IfExists,
    ImportedInstance,
    InboxMessage,
    InstancePage,
    InstanceQuery,
    InstanceState,
    NewInstance,
    PurgeQuery,
    ScaleMetrics,
    TerminateOutcome,
)
from dtctl.hub.sql import repair
from dtctl.hub.sql.instances import purge_filters, purge_in_batches, version_tag_filters
from dtctl.hub.sql.records import (
    INSTANCE_COLUMNS,
    INSTANCE_COLUMNS_NO_PAYLOADS,
    activity_from_row,
    decode_cursor,
    encode_cursor,
    first_from_row,
    history_record_from_row,
    inbox_message_from_row,
    instance_from_row,
    scale_from_row,
)
from dtctl.hub.sql.repair import purge_with_descendants
from dtctl.hub.sqlite import ops
from dtctl.hub.sqlite import queries as q
from dtctl.hub.sqlite.clock import wall_lease
from dtctl.hub.sqlite.parts import SqliteHubParts

_IF_EXISTS = ("fail", "skip", "replace")


class SqliteInstances(SqliteHubParts):
    """Client-side instance operations of the SQLite hub."""

    url: str

    def create_instances(
        self, instances: Sequence[NewInstance], *, if_exists: IfExists = "fail"
    ) -> list[CreateOutcome]:
        if if_exists not in _IF_EXISTS:
            raise UsageError(f"if_exists must be one of {', '.join(_IF_EXISTS)}, not {if_exists!r}")
        if not instances:
            return []
        with self._write() as conn:
            return ops.create_instances(conn, self.now(), instances, if_exists, self.url)

    def raise_event(
        self,
        instance_id: str,
        name: str,
        data: str | None,
        *,
        force: bool = False,
        trace_context: str | None = None,
    ) -> None:
        with self._write() as conn:
            now = self.now()
            event = EventRaised(timestamp=now, name=name, input=data)
            ops.send_to_live(
                conn, now, instance_id, event, self.url, force=force, trace_context=trace_context
            )

    def terminate(self, instance_id: str, reason: str | None, *, recursive: bool = True) -> TerminateOutcome:
        with self._write() as conn:
            return ops.terminate(conn, self.now(), instance_id, reason, recursive, self.url)

    def suspend(self, instance_id: str, reason: str | None) -> None:
        with self._write() as conn:
            now = self.now()
            ops.send_to_live(
                conn, now, instance_id, ExecutionSuspended(timestamp=now, reason=reason), self.url
            )

    def resume(self, instance_id: str, reason: str | None) -> None:
        with self._write() as conn:
            now = self.now()
            ops.send_to_live(conn, now, instance_id, ExecutionResumed(timestamp=now, reason=reason), self.url)

    def get_instance(self, instance_id: str, *, include_payloads: bool = True) -> InstanceState | None:
        columns = INSTANCE_COLUMNS if include_payloads else INSTANCE_COLUMNS_NO_PAYLOADS
        with self._edge() as conn:
            row = conn.execute(
                f"SELECT {columns} FROM instances WHERE instance_id = ?", (instance_id,)
            ).fetchone()
        return None if row is None else wall_lease(instance_from_row(row), self.lease_skew())

    def list_instances(self, query: InstanceQuery) -> InstancePage:
        where, params = _list_filters(query)
        columns = INSTANCE_COLUMNS if query.include_payloads else INSTANCE_COLUMNS_NO_PAYLOADS
        limit = max(1, query.limit)
        sql = f"SELECT {columns} FROM instances {where} ORDER BY created_at DESC, instance_id DESC LIMIT ?"
        with self._edge() as conn:
            rows = conn.execute(sql, (*params, limit + 1)).fetchall()
        skew = self.lease_skew()
        page = [wall_lease(instance_from_row(r), skew) for r in rows[:limit]]
        more = len(rows) > limit
        cursor = encode_cursor(page[-1].created_at, page[-1].instance_id) if more and page else None
        return InstancePage(page, cursor)

    def get_history(
        self, instance_id: str, execution_id: str | None = None, *, after: int = -1, limit: int | None = None
    ) -> list[HistoryRecord]:
        with self._edge() as conn:
            if execution_id is None:
                found = ops.status_of(conn, instance_id)
                if found is None:
                    raise ops.not_found(instance_id, self.url)
                execution_id = found.execution_id
            limit_or_all = -1 if limit is None else limit  # LIMIT -1: no limit
            params: dict[str, object] = {"instance_id": instance_id, "execution_id": execution_id}
            params |= {"after": after, "limit": limit_or_all}
            rows = conn.execute(q.LOAD_HISTORY_PAGE, params)
            return [history_record_from_row(execution_id, r) for r in rows]

    def pending_messages(self, instance_id: str) -> list[InboxMessage]:
        with self._edge() as conn:
            rows = conn.execute(q.SELECT_INBOX, (instance_id,)).fetchall()
        return [inbox_message_from_row(r) for r in rows]

    def pending_activities(self, instance_id: str) -> list[ActivityWorkItem]:
        with self._edge() as conn:
            rows = conn.execute(q.SELECT_TASKS_OF, (instance_id,)).fetchall()
        skew = self.lease_skew()
        return [wall_lease(activity_from_row(r), skew) for r in rows]

    def purge(self, query: PurgeQuery) -> int:
        return purge_in_batches(query, self._purge_batch)

    def _purge_batch(self, query: PurgeQuery, ids: list[str] | None, limit: int) -> int:
        marks = ", ".join("?" * len(query.statuses))
        clauses, params = purge_filters(query, "?")
        sql = " AND ".join([f"SELECT instance_id FROM instances WHERE status IN ({marks})", *clauses])
        if ids is not None:
            sql += " AND instance_id IN (SELECT value FROM json_each(?))"
            params.append(json.dumps(ids))
        with self._write() as conn:
            rows = conn.execute(f"{sql} LIMIT ?", (*query.statuses, *params, limit)).fetchall()
            found = [first_from_row(r) for r in rows]
            doomed = purge_with_descendants(ops.DIALECT, conn, found, recursive=query.recursive)
            for instance_id in doomed:
                ops.remove_instance(conn, instance_id)
            return len(doomed)

    def rewind(self, instance_id: str, reason: str | None) -> list[str]:
        with self._write("rewind") as conn:
            return repair.rewind(ops.DIALECT, conn, q.REPAIR, self.now(), instance_id, reason, self.url)

    def import_instance(self, case: ImportedInstance) -> None:
        with self._write() as conn:
            repair.import_instance(ops.DIALECT, conn, q.REPAIR, case, self.url)

    def scale_metrics(self) -> ScaleMetrics:
        with self._edge() as conn:
            row = conn.execute(q.SCALE_METRICS, {"now": self.now(), "lease_now": self.lease_now()}).fetchone()
        return scale_from_row(row)


def _list_filters(query: InstanceQuery) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if query.statuses:
        unknown = [s for s in query.statuses if s not in ALL_STATUSES]
        if unknown:
            raise UsageError(f"unknown status {unknown[0]!r}; use one of {', '.join(ALL_STATUSES)}")
        clauses.append(f"status IN ({', '.join('?' * len(query.statuses))})")
        params.extend(query.statuses)
    if query.name is not None:
        clauses.append("name = ?")
        params.append(query.name)
    if query.prefix:
        # The range lets the primary key narrow the scan; substr makes the match exact.
        clauses.append("instance_id >= ? AND substr(instance_id, 1, ?) = ?")
        params.extend((query.prefix, len(query.prefix), query.prefix))
    if query.created_after is not None:
        clauses.append("created_at > ?")
        params.append(query.created_after)
    if query.created_before is not None:
        clauses.append("created_at < ?")
        params.append(query.created_before)
    version_tag_filters(query, clauses, params, "?")
    if query.cursor:
        created_at, instance_id = decode_cursor(query.cursor)
        clauses.append("(created_at, instance_id) < (?, ?)")
        params.extend((created_at, instance_id))
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", params
