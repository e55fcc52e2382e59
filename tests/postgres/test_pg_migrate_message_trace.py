"""Migration 007 (the sender's trace context of a message) on a PostgreSQL hub made before it."""

from __future__ import annotations

import pytest

from dtctl.core.history import EventRaised
from dtctl.errors import SchemaVersionMismatch
from dtctl.hub import open_hub
from dtctl.hub.postgres import PostgresTaskHub
from dtctl.hub.postgres import conn as pgc
from tests import pgserver
from tests.hub.hub_helpers import lease, start, step

SENDER = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
MIGRATION = next(m.version for m in pgc.MIGRATIONS if m.name == "message_trace_context")


def test_an_older_hub_migrates_and_its_queued_messages_still_flow(
    pg_server: pgserver.PgServer, pg_url: str
) -> None:
    hub = PostgresTaskHub(pg_url, create=True)
    schema = hub.schema
    start(hub, "waits")
    step(hub, "waits")
    hub.raise_event("waits", "queued", '"before"')
    hub.signal_entity("@counter@a", "add", "1")
    hub.close()
    with pg_server.admin() as conn:  # what a hub made by the dtctl before the migration looks like
        conn.execute(f"ALTER TABLE {schema}.new_events DROP COLUMN trace_context")
        conn.execute(f"ALTER TABLE {schema}.entity_inbox DROP COLUMN trace_context")
        conn.execute(f"DELETE FROM {schema}.versions WHERE version >= %s", (MIGRATION,))
    with pytest.raises(SchemaVersionMismatch):
        open_hub(pg_url)
    older = PostgresTaskHub(pg_url, check_schema=False)
    older.migrate()
    older.close()
    hub = PostgresTaskHub(pg_url)
    try:
        assert hub.schema_version() == pgc.latest_version()
        hub.raise_event("waits", "traced", '"after"', trace_context=SENDER)
        item = lease(hub, "waits")
        raised = [(m.event.name, m.trace_context) for m in item.messages if isinstance(m.event, EventRaised)]
        assert raised == [("queued", None), ("traced", SENDER)]
        hub.signal_entity("@counter@a", "add", "2", trace_context=SENDER)
        [entity] = hub.lease_entities("w1", None, limit=10, lease_seconds=30)
        assert [(m.input, m.trace_context) for m in entity.messages] == [("1", None), ("2", SENDER)]
    finally:
        hub.close()
