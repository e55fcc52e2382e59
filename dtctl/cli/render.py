"""All output of the CLI: rich tables on a terminal, plain text otherwise, or JSON with ``--json``.

Commands hand data to these functions and never format it themselves. The JSON shapes are part of the
CLI contract (documented in the man pages): times are ISO-8601 UTC strings, payloads are JSON values.
Messages and progress go to stderr so stdout stays clean for pipes.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from dtctl.core.failure import FailureDetails
from dtctl.core.history import COMPLETED, FAILED, RUNNING, SUSPENDED, TERMINATED, HistoryEvent, event_to_dict
from dtctl.hub.base import HistoryRecord, InstancePage, InstanceState

SHORT_PAYLOAD = 60
STATUS_STYLES = {
    COMPLETED: "green",
    FAILED: "bold red",
    TERMINATED: "magenta",
    RUNNING: "cyan",
    SUSPENDED: "yellow",
}


def _color_allowed(stream: Any) -> bool:
    return "NO_COLOR" not in os.environ and bool(getattr(stream, "isatty", lambda: False)())


def stdout_console() -> Console:
    if _color_allowed(sys.stdout):
        return Console(highlight=False)
    return Console(color_system=None, force_terminal=False, highlight=False, width=200, soft_wrap=True)


def stderr_console() -> Console:
    if _color_allowed(sys.stderr):
        return Console(stderr=True, highlight=False)
    return Console(stderr=True, color_system=None, force_terminal=False, highlight=False, soft_wrap=True)


# --- plain values ----------------------------------------------------------------------------------


def iso(us: int | None) -> str | None:
    if us is None:
        return None
    return datetime.fromtimestamp(us / 1_000_000, UTC).isoformat().replace("+00:00", "Z")


def local_time(us: int | None) -> str:
    if us is None:
        return "-"
    moment = datetime.fromtimestamp(us / 1_000_000, UTC).astimezone()
    return (
        moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d} " + (moment.tzname() or "")
    )


def payload_value(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def short(text: str | None, limit: int = SHORT_PAYLOAD) -> str:
    if text is None:
        return ""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def failure_dict(failure: FailureDetails | None, *, with_trace: bool = True) -> dict[str, Any] | None:
    if failure is None:
        return None
    out = {"error_type": failure.error_type, "message": failure.message}
    if with_trace and failure.stack_trace:
        out["stack_trace"] = failure.stack_trace
    return out


def instance_dict(state: InstanceState) -> dict[str, Any]:
    return {
        "instance_id": state.instance_id,
        "execution_id": state.execution_id,
        "name": state.name,
        "status": state.status,
        "created_at": iso(state.created_at),
        "updated_at": iso(state.updated_at),
        "completed_at": iso(state.completed_at),
        "scheduled_start": iso(state.scheduled_start),
        "input": payload_value(state.input),
        "output": payload_value(state.output),
        "custom_status": payload_value(state.custom_status),
        "failure": failure_dict(state.failure),
        "parent_instance_id": state.parent_instance_id,
        "lease_owner": state.lease_owner,
        "lease_expires": iso(state.lease_expires),
        "history_length": state.history_length,
    }


def history_dict(record: HistoryRecord) -> dict[str, Any]:
    data = event_to_dict(record.event)
    data.pop("timestamp", None)
    for key in ("input", "result", "data"):
        if key in data:
            data[key] = payload_value(data[key])
    for key in ("fire_at", "scheduled_start"):
        if key in data:
            data[key] = iso(data[key])
    return {
        "sequence": record.sequence,
        "execution_id": record.execution_id,
        "timestamp": iso(record.event.timestamp),
        **data,
    }


# --- output ----------------------------------------------------------------------------------------------


def emit_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def message(text: str) -> None:
    stderr_console().print(text, markup=False)


def error(text: str, hint: str | None = None) -> None:
    console = stderr_console()
    console.print(Text("error: ", style="bold red") + Text(text))
    if hint:
        console.print(Text("hint: ", style="dim") + Text(hint))


def status_text(status: str) -> Text:
    return Text(status, style=STATUS_STYLES.get(status, ""))


def instance_ids(ids: Sequence[str], *, as_json: bool, created: Sequence[bool] | None = None) -> None:
    if as_json:
        rows = [
            {"instance_id": i, "created": True if created is None else created[n]} for n, i in enumerate(ids)
        ]
        emit_json(rows[0] if len(rows) == 1 else rows)
        return
    for i in ids:
        sys.stdout.write(i + "\n")


def instance_detail(state: InstanceState, *, as_json: bool, full: bool = False) -> None:
    if as_json:
        emit_json(instance_dict(state))
        return
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    limit = None if full else 200
    rows: list[tuple[str, Text | str]] = [
        ("instance", state.instance_id),
        ("name", state.name),
        ("status", status_text(state.status)),
        ("execution", state.execution_id),
        ("created", local_time(state.created_at)),
        ("updated", local_time(state.updated_at)),
    ]
    if state.completed_at:
        rows.append(("completed", local_time(state.completed_at)))
    if state.parent_instance_id:
        rows.append(("parent", state.parent_instance_id))
    for label, text in (
        ("input", state.input),
        ("output", state.output),
        ("custom status", state.custom_status),
    ):
        if text is not None:
            rows.append((label, text if limit is None else short(text, limit)))
    if state.failure:
        rows.append(("failure", Text(f"{state.failure.error_type}: {state.failure.message}", style="red")))
    if state.lease_owner:
        rows.append(("leased by", f"{state.lease_owner} until {local_time(state.lease_expires)}"))
    rows.append(("history", f"{state.history_length} events"))
    for label, value in rows:
        table.add_row(label, value)
    stdout_console().print(table)


def instance_list(page: InstancePage, *, as_json: bool) -> None:
    if as_json:
        emit_json({"instances": [instance_dict(s) for s in page.instances], "next_cursor": page.next_cursor})
        return
    table = Table(box=None, header_style="bold")
    for column in ("INSTANCE", "NAME", "STATUS", "CREATED", "UPDATED"):
        table.add_column(column, no_wrap=True)
    for s in page.instances:
        table.add_row(
            s.instance_id, s.name, status_text(s.status), local_time(s.created_at), local_time(s.updated_at)
        )
    stdout_console().print(table)
    if page.next_cursor:
        message(f"more instances: --cursor {page.next_cursor}")


def _event_summary(event: HistoryEvent, payloads: bool) -> Text:
    data = event_to_dict(event)
    limit = None if payloads else SHORT_PAYLOAD
    failure = data.get("failure")
    if isinstance(failure, dict):
        return Text(f"{failure.get('error_type')}: {failure.get('message')}", style="red")
    for key in ("result", "input", "data", "reason"):
        if data.get(key) is not None:
            value = str(data[key])
            return Text(value if limit is None else short(value, limit))
    if "fire_at" in data:
        return Text(f"fires {local_time(data['fire_at'])}")
    if "status" in data:
        return status_text(str(data["status"]))
    return Text("")


def history_table(records: Iterable[HistoryRecord], *, as_json: bool, payloads: bool = False) -> None:
    records = list(records)
    if as_json:
        emit_json([history_dict(r) for r in records])
        return
    table = Table(box=None, header_style="bold")
    for column in ("SEQ", "TIME", "KIND", "NAME", "TASK", "DETAIL"):
        table.add_column(column, no_wrap=column != "DETAIL")
    for record in records:
        event = record.event
        name = getattr(event, "name", None) or getattr(event, "instance_id", None) or ""
        task = event.task_ref
        table.add_row(
            str(record.sequence),
            local_time(event.timestamp),
            event.kind,
            str(name) if event.kind != "execution_started" else str(getattr(event, "name", "")),
            "" if task is None else str(task),
            _event_summary(event, payloads),
        )
    stdout_console().print(table)
