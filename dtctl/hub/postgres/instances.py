"""The instance operations of :class:`~dtctl.hub.postgres.PostgresTaskHub` that clients call (mixed in):
start, raise, terminate, suspend and resume, read, list, history, purge, rewind, import."""

from __future__ import annotations

from collections.abc import Sequence

from dtctl.core.history import EventRaised, ExecutionResumed, ExecutionSuspended
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
from dtctl.hub.postgres import ops
from dtctl.hub.postgres import queries as q
from dtctl.hub.postgres import rows as rows_mod
from dtctl.hub.postgres.ops import Conn
from dtctl.hub.postgres.parts import PostgresHubParts
from dtctl.hub.sql import repair
from dtctl.hub.sql.instances import purge_filters, purge_in_batches
from dtctl.hub.sql.records import (
    INSTANCE_COLUMNS,
    INSTANCE_COLUMNS_NO_PAYLOADS,
    activity_from_row,
    encode_cursor,
    first_from_row,
    history_record_from_row,
    inbox_message_from_row,
    instance_from_row,
    scale_from_row,
)
from dtctl.hub.sql.repair import purge_with_descendants

_IF_EXISTS = ("fail", "skip", "replace")


class PostgresInstances(PostgresHubParts):
    """Client-side instance operations of the PostgreSQL hub."""

    url: str

    def create_instances(
        self, instances: Sequence[NewInstance], *, if_exists: IfExists = "fail"
    ) -> list[CreateOutcome]:
        if if_exists not in _IF_EXISTS:
            raise UsageError(f"if_exists must be one of {', '.join(_IF_EXISTS)}, not {if_exists!r}")
        if not instances:
            return []
        return self._write(
            lambda conn: ops.create_instances(conn, self._now_in(conn), instances, if_exists, self.url)
        )

    def raise_event(
        self,
        instance_id: str,
        name: str,
        data: str | None,
        *,
        force: bool = False,
        trace_context: str | None = None,
    ) -> None:
        def work(conn: Conn) -> None:
            now = self._now_in(conn)
            event = EventRaised(timestamp=now, name=name, input=data)
            ops.send_to_live(
                conn, now, instance_id, event, self.url, force=force, trace_context=trace_context
            )

        self._write(work)

    def terminate(self, instance_id: str, reason: str | None, *, recursive: bool = True) -> TerminateOutcome:
        return self._write(
            lambda conn: ops.terminate(conn, self._now_in(conn), instance_id, reason, recursive, self.url)
        )

    def suspend(self, instance_id: str, reason: str | None) -> None:
        def work(conn: Conn) -> None:
            now = self._now_in(conn)
            ops.send_to_live(
                conn, now, instance_id, ExecutionSuspended(timestamp=now, reason=reason), self.url
            )

        self._write(work)

    def resume(self, instance_id: str, reason: str | None) -> None:
        def work(conn: Conn) -> None:
            now = self._now_in(conn)
            ops.send_to_live(conn, now, instance_id, ExecutionResumed(timestamp=now, reason=reason), self.url)

        self._write(work)

    def get_instance(self, instance_id: str, *, include_payloads: bool = True) -> InstanceState | None:
        columns = INSTANCE_COLUMNS if include_payloads else INSTANCE_COLUMNS_NO_PAYLOADS
        sql = f"SELECT {columns} FROM instances WHERE instance_id = %s"
        row = self._read(lambda conn: conn.execute(sql, (instance_id,)).fetchone())
        return None if row is None else instance_from_row(row)

    def list_instances(self, query: InstanceQuery) -> InstancePage:
        where, params = rows_mod.list_filters(query)
        columns = INSTANCE_COLUMNS if query.include_payloads else INSTANCE_COLUMNS_NO_PAYLOADS
        limit = max(1, query.limit)
        sql = f"SELECT {columns} FROM instances {where} ORDER BY created_at DESC, instance_id DESC LIMIT %s"
        rows = self._read(lambda conn: conn.execute(sql, (*params, limit + 1)).fetchall())
        page = [instance_from_row(r) for r in rows[:limit]]
        more = len(rows) > limit
        cursor = encode_cursor(page[-1].created_at, page[-1].instance_id) if more and page else None
        return InstancePage(page, cursor)

    def get_history(
        self, instance_id: str, execution_id: str | None = None, *, after: int = -1, limit: int | None = None
    ) -> list[HistoryRecord]:
        def work(conn: Conn) -> list[HistoryRecord]:
            execution = execution_id
            if execution is None:
                found = ops.status_of(conn, instance_id)
                if found is None:
                    raise ops.not_found(instance_id, self.url)
                execution = found.execution_id
            # LIMIT NULL: no limit
            params = {"instance_id": instance_id, "execution_id": execution, "after": after, "limit": limit}
            rows = conn.execute(q.LOAD_HISTORY_PAGE, params)
            return [history_record_from_row(execution, r) for r in rows.fetchall()]

        return self._read(work)

    def pending_messages(self, instance_id: str) -> list[InboxMessage]:
        rows = self._read(lambda conn: conn.execute(q.SELECT_INBOX, (instance_id,)).fetchall())
        return [inbox_message_from_row(r) for r in rows]

    def pending_activities(self, instance_id: str) -> list[ActivityWorkItem]:
        rows = self._read(lambda conn: conn.execute(q.SELECT_TASKS_OF, (instance_id,)).fetchall())
        return [activity_from_row(r) for r in rows]

    def purge(self, query: PurgeQuery) -> int:
        return purge_in_batches(query, self._purge_batch)

    def _purge_batch(self, query: PurgeQuery, ids: list[str] | None, limit: int) -> int:
        clauses, params = purge_filters(query, "%s")
        sql = " AND ".join(["SELECT instance_id FROM instances WHERE status = ANY(%s)", *clauses])
        if ids is not None:
            sql += " AND instance_id = ANY(%s)"
            params.append(ids)
        sql += " LIMIT %s FOR UPDATE SKIP LOCKED"

        def work(conn: Conn) -> int:
            rows = conn.execute(sql, (list(query.statuses), *params, limit)).fetchall()
            found = [first_from_row(r) for r in rows]
            doomed = purge_with_descendants(ops.DIALECT, conn, found, recursive=query.recursive)
            ops.remove_instances(conn, doomed)
            return len(doomed)

        return self._write(work)

    def rewind(self, instance_id: str, reason: str | None) -> list[str]:
        def work(conn: Conn) -> list[str]:
            now = self._now_in(conn)
            return repair.rewind(ops.DIALECT, conn, q.REPAIR, now, instance_id, reason, self.url)

        return self._write(work, fault="rewind")

    def import_instance(self, case: ImportedInstance) -> None:
        self._write(lambda conn: repair.import_instance(ops.DIALECT, conn, q.REPAIR, case, self.url))

    def scale_metrics(self) -> ScaleMetrics:
        row = self._read(lambda conn: conn.execute(q.SCALE_INPUTS, (self._now_param(),)).fetchone())
        assert row is not None
        return scale_from_row(row)

    def scale_recommendation(self, max_orchestrations: int, max_activities: int) -> int:
        """What ``SELECT <schema>.scale_recommendation(N, M)`` returns (KEDA's query), by this hub's clock."""
        sql = "SELECT scale_recommendation_at(%s, %s, %s::bigint)"
        params = (max_orchestrations, max_activities, self._now_param())
        row = self._read(lambda conn: conn.execute(sql, params).fetchone())
        assert row is not None
        return int(first_from_row(row))
