"""Migration 007 (the sender's trace context of a message) on a hub made before it: `dtctl hub migrate` adds
the columns, the messages already queued keep flowing with no context, and new ones carry theirs."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from dtctl.core.history import EventRaised
from dtctl.errors import SchemaVersionMismatch
from dtctl.hub import open_hub
from dtctl.hub.sqlite import SqliteTaskHub
from dtctl.hub.sqlite import conn as sqlite_conn
from tests.helpers import REPO, child_env
from tests.hub.hub_helpers import lease, start, step

SENDER = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


MIGRATION = next(m.version for m in sqlite_conn.MIGRATIONS if m.name == "message_trace_context")


def _as_before(path: Path) -> None:
    """Take the migration back out of a hub file: what a hub made by the dtctl before it looks like."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("ALTER TABLE new_events DROP COLUMN trace_context")
        conn.execute("ALTER TABLE entity_inbox DROP COLUMN trace_context")
        conn.execute("DELETE FROM schema_migrations WHERE version >= ?", (MIGRATION,))
        conn.execute(f"PRAGMA user_version = {MIGRATION - 1}")
    finally:
        conn.close()


def _columns(path: Path, table: str) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
    finally:
        conn.close()


def test_an_older_hub_migrates_and_its_queued_messages_still_flow(tmp_path: Path) -> None:
    path = tmp_path / "hub.db"
    hub = SqliteTaskHub(path, create=True)
    start(hub, "waits")
    step(hub, "waits")
    hub.raise_event("waits", "queued", '"before"')
    hub.signal_entity("@counter@a", "add", "1")
    hub.close()
    _as_before(path)
    assert "trace_context" not in _columns(path, "new_events")
    with pytest.raises(SchemaVersionMismatch):
        open_hub(str(path))
    migrated = subprocess.run(
        [sys.executable, "-m", "dtctl", "--hub", str(path), "hub", "migrate", "--json"],
        cwd=REPO,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert migrated.returncode == 0, migrated.stderr
    assert {"trace_context"} <= _columns(path, "new_events") & _columns(path, "entity_inbox")
    hub = SqliteTaskHub(path)
    try:
        assert hub.schema_version() == sqlite_conn.latest_version()
        hub.raise_event("waits", "traced", '"after"', trace_context=SENDER)
        item = lease(hub, "waits")
        raised = [(m.event.name, m.trace_context) for m in item.messages if isinstance(m.event, EventRaised)]
        assert raised == [("queued", None), ("traced", SENDER)]
        hub.signal_entity("@counter@a", "add", "2", trace_context=SENDER)
        [entity] = hub.lease_entities("w1", None, limit=10, lease_seconds=30)
        assert [(m.input, m.trace_context) for m in entity.messages] == [("1", None), ("2", SENDER)]
    finally:
        hub.close()
