"""Output of ``dtctl entity``: tables on a terminal, JSON with ``--json``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rich.table import Table

from dtctl.cli.render import (
    emit_json,
    iso,
    local_time,
    message,
    payload_value,
    relative,
    short,
    stdout_console,
)
from dtctl.client_entities import EntityDetails
from dtctl.core.entity_exec import LockHolder
from dtctl.hub.base import EntityCleanup, EntityMessageInfo, EntityPage, EntityState


def lock_dict(lock: LockHolder | None) -> dict[str, Any] | None:
    if lock is None:
        return None
    return {
        "instance_id": lock.instance_id,
        "execution_id": lock.execution_id,
        "critical_section_id": lock.critical_section_id,
    }


def entity_dict(entity: EntityState) -> dict[str, Any]:
    return {
        "entity_id": entity.entity_id,
        "name": entity.name,
        "key": entity.key,
        "state": payload_value(entity.state),
        "created_at": iso(entity.created_at),
        "last_modified": iso(entity.last_modified),
        "locked_by": lock_dict(entity.lock),
        "backlog": entity.backlog,
        "lease_owner": entity.lease_owner,
        "lease_expires": iso(entity.lease_expires),
        "dequeue_count": entity.dequeue_count,
    }


def message_dict(info: EntityMessageInfo) -> dict[str, Any]:
    m = info.message
    return {
        "id": m.id,
        "kind": str(m.kind),
        "operation": m.operation,
        "input": payload_value(m.input),
        "sender_instance_id": m.sender_instance_id,
        "sender_task_id": m.sender_task_id,
        "critical_section_id": m.critical_section_id,
        "lock_set": list(m.lock_set) or None,
        "visible_at": iso(info.visible_at),
        "waiting_for_lock": info.parked,
    }


def _holder(lock: LockHolder | None) -> str:
    return "-" if lock is None else lock.instance_id


def entity_list(page: EntityPage, now: int, *, as_json: bool) -> None:
    if as_json:
        emit_json({"entities": [entity_dict(e) for e in page.entities], "next_cursor": page.next_cursor})
        return
    table = Table(box=None, header_style="bold")
    for column in ("ENTITY", "STATE", "MODIFIED", "LOCKED BY", "BACKLOG"):
        table.add_column(column, no_wrap=column != "STATE")
    for e in page.entities:
        table.add_row(
            e.entity_id,
            short(e.state) if e.state else "-",
            relative(e.last_modified, now),
            _holder(e.lock),
            str(e.backlog),
        )
    stdout_console().print(table)
    if page.next_cursor:
        message(f"more entities: --cursor {page.next_cursor}")


def entity_detail(details: EntityDetails, *, as_json: bool) -> None:
    e = details.entity
    if as_json:
        emit_json({**entity_dict(e), "messages": [message_dict(m) for m in details.messages]})
        return
    table = Table(box=None, show_header=False)
    table.add_column(style="bold")
    table.add_column()
    rows = [
        ("entity", e.entity_id),
        ("state", e.state if e.state is not None else "(none)"),
        ("created", local_time(e.created_at)),
        ("last modified", local_time(e.last_modified)),
        (
            "locked by",
            "-"
            if e.lock is None
            else f"{e.lock.instance_id} (critical section {e.lock.critical_section_id})",
        ),
        ("lease", "-" if e.lease_owner is None else f"{e.lease_owner} until {local_time(e.lease_expires)}"),
        ("backlog", str(e.backlog)),
    ]
    for label, value in rows:
        table.add_row(label, value)
    stdout_console().print(table)
    if details.messages:
        inbox = Table(box=None, header_style="bold")
        for column in ("ID", "KIND", "OPERATION", "FROM", "VISIBLE", "WAITING"):
            inbox.add_column(column, no_wrap=True)
        for info in details.messages:
            m = info.message
            inbox.add_row(
                str(m.id),
                str(m.kind),
                m.operation or "-",
                m.sender_instance_id or "client",
                relative(info.visible_at, details.now),
                "for the lock" if info.parked else "",
            )
        stdout_console().print(inbox)


def signalled(entity_id: str, operation: str, when: datetime | None, *, as_json: bool) -> None:
    data = {
        "entity_id": entity_id,
        "operation": operation,
        "signalled": True,
        "at": when.isoformat() if when else None,
    }
    if as_json:
        emit_json(data)
        return
    message(f"signalled {operation!r} to {entity_id}" + (f" at {when.isoformat()}" if when else ""))


def cleaned(result: EntityCleanup, *, dry_run: bool, as_json: bool) -> None:
    data = {
        "empty_entities_removed": result.empty_entities_removed,
        "orphaned_locks_released": result.orphaned_locks_released,
        "dry_run": dry_run,
    }
    if as_json:
        emit_json(data)
        return
    verb = "would remove" if dry_run else "removed"
    release = "would release" if dry_run else "released"
    message(
        f"{verb} {result.empty_entities_removed} empty entities; "
        f"{release} {result.orphaned_locks_released} orphaned locks"
    )
