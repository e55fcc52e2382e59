"""All output of the CLI: rich tables on a terminal, plain text otherwise, or JSON with ``--json``.

Commands hand data to these functions and never format it themselves. The JSON shapes are part of the
CLI contract (documented in the man pages): times are ISO-8601 UTC strings, payloads are JSON values.
Messages and progress go to stderr so stdout stays clean for pipes.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import IO, Any, cast

from rich.console import Console
from rich.table import Table
from rich.text import Text

from dtctl.client_views import Unclaimed, WaitingFor
from dtctl.core.failure import FailureDetails
from dtctl.core.history import COMPLETED, FAILED, RUNNING, SUSPENDED, TERMINATED, event_to_dict
from dtctl.hub.base import CreateOutcome, HistoryRecord, InstancePage, InstanceState

SHORT_PAYLOAD = 60
# Plain output (a pipe, a file) is not wrapped: a line per row, whatever its length, for grep and cut.
PLAIN_WIDTH = 100_000
STATUS_STYLES: dict[str, str] = {
    COMPLETED: "green",
    FAILED: "bold red",
    TERMINATED: "magenta",
    RUNNING: "cyan",
    SUSPENDED: "yellow",
}


def _color_allowed(stream: Any) -> bool:
    return "NO_COLOR" not in os.environ and bool(getattr(stream, "isatty", lambda: False)())


class _TrimmedLines:
    """A text stream that drops the padding rich leaves at the end of table lines (plain output)."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self._pending = ""

    def write(self, text: str) -> int:
        lines = (self._pending + text).split("\n")
        self._pending = lines.pop()
        if lines:
            self._stream.write("".join(line.rstrip() + "\n" for line in lines))
        return len(text)

    def flush(self) -> None:
        if self._pending:
            self._stream.write(self._pending)
            self._pending = ""
        self._stream.flush()

    def isatty(self) -> bool:
        return False

    @property
    def encoding(self) -> str:
        return str(getattr(self._stream, "encoding", None) or "utf-8")


def _plain_console(stream: Any, *, width: int | None = None) -> Console:
    return Console(
        file=cast(IO[str], _TrimmedLines(stream)),
        color_system=None,
        force_terminal=False,
        highlight=False,
        width=width,
        soft_wrap=True,
    )


def stdout_console() -> Console:
    if _color_allowed(sys.stdout):
        return Console(highlight=False)
    return _plain_console(sys.stdout, width=PLAIN_WIDTH)


def stderr_console() -> Console:
    if _color_allowed(sys.stderr):
        return Console(stderr=True, highlight=False)
    return _plain_console(sys.stderr)


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


def duration(us: int | None) -> str:
    """A span of time for people: 850 ms, 1.52 s, 2m 03s, 1h 02m, 3d 04h."""
    if us is None:
        return "-"
    seconds = max(us, 0) / 1_000_000
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms" if seconds >= 0.001 or us == 0 else f"{max(us, 0)} µs"
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours:02d}h"


def relative(us: int | None, now: int) -> str:
    """``in 4m 10s`` / ``3.20 s ago``."""
    if us is None:
        return "-"
    return f"in {duration(us - now)}" if us >= now else f"{duration(now - us)} ago"


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


def failure_text(failure: FailureDetails | Mapping[str, Any]) -> str:
    """``RuntimeError: no stock`` (builtin exception types without their ``builtins.`` prefix)."""
    if isinstance(failure, FailureDetails):
        error_type, text = failure.error_type, failure.message
    else:
        error_type, text = str(failure.get("error_type")), str(failure.get("message"))
    return f"{error_type.removeprefix('builtins.')}: {text}"


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
        "previous_execution_id": state.previous_execution_id,
        "version": state.version,
        "tags": dict(state.tags or {}),
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


def unclaimed_dict(unclaimed: Unclaimed) -> dict[str, Any]:
    return {
        "orchestrations": list(unclaimed.orchestrations),
        "activities": list(unclaimed.activities),
        "live_workers": unclaimed.live_workers,
        "version_refused": unclaimed.version_refused,
        "version": unclaimed.version,
    }


def waiting_dict(waiting: WaitingFor) -> dict[str, Any]:
    episode = None
    if waiting.episode_worker:
        episode = {"worker": waiting.episode_worker, "lease_expires": iso(waiting.episode_lease_expires)}
    return {
        "start_at": iso(waiting.start_at),
        "episode": episode,
        "activities": [
            {
                "task_id": a.task_id,
                "name": a.name,
                "state": a.state,
                "scheduled_at": iso(a.scheduled_at),
                "worker": a.worker,
                "lease_expires": iso(a.lease_expires),
                "visible_at": iso(a.visible_at),
                "attempts": a.attempts,
            }
            for a in waiting.activities
        ],
        "timers": [
            {
                "task_id": t.task_id,
                "fire_at": iso(t.fire_at),
                "created_at": iso(t.created_at),
                "state": t.state,
            }
            for t in waiting.timers
        ],
        "sub_orchestrations": [
            {
                "task_id": c.task_id,
                "name": c.name,
                "instance_id": c.instance_id,
                "status": c.status,
                "state": c.state,
                "created_at": iso(c.created_at),
            }
            for c in waiting.sub_orchestrations
        ],
        "entity_requests": [
            {
                "task_id": r.task_id,
                "kind": r.kind,
                "entity_ids": list(r.entity_ids),
                "operation": r.operation,
                "state": r.state,
                "held_by": list(r.held_by) or None,
                "created_at": iso(r.created_at),
            }
            for r in waiting.entity_requests
        ],
        "new_events": [
            {
                "kind": e.kind,
                "name": e.name,
                "task_id": e.task_id,
                "due_at": iso(e.due_at),
                "visible": e.visible,
                "dequeue_count": e.dequeue_count,
            }
            for e in waiting.new_events
        ],
        "events_received": list(waiting.events_received),
        "events_buffered": list(waiting.events_buffered),
        "unclaimed": unclaimed_dict(waiting.unclaimed),
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


def warning(text: str, hint: str | None = None) -> None:
    console = stderr_console()
    console.print(Text("warning: ", style="bold yellow") + Text(text))
    if hint:
        console.print(Text("hint: ", style="dim") + Text(hint))


def done(data: Mapping[str, Any], text: str, *, as_json: bool) -> None:
    """The outcome of a command that changes something: JSON on stdout, or a message on stderr."""
    if as_json:
        emit_json(dict(data))
    else:
        message(text)


def status_text(status: str) -> Text:
    return Text(status, style=STATUS_STYLES.get(status, ""))


def created(outcome: CreateOutcome, *, as_json: bool) -> None:
    """``start-instance``: ``{"instance_id": …, "created": true}``, or the bare id for scripts."""
    if as_json:
        emit_json({"instance_id": outcome.instance_id, "created": outcome.created})
        return
    sys.stdout.write(outcome.instance_id + "\n")
    if not outcome.created:
        message(f"{outcome.instance_id} exists already; not started again (--if-exists skip)")


def instance_result(state: InstanceState, *, as_json: bool) -> None:
    """``--wait`` / ``wait``: the instance object as JSON, or just its output (JSON text) for scripts."""
    if as_json:
        emit_json(instance_dict(state))
        return
    if state.output is not None:
        sys.stdout.write(state.output + "\n")
    sys.stdout.flush()


def tags_text(tags: Mapping[str, str] | None) -> str:
    return ",".join(f"{k}={v}" for k, v in (tags or {}).items()) or "-"


def instance_list(page: InstancePage, *, as_json: bool, link: Callable[[str], str] | None = None) -> None:
    """One page of instances; ``link`` gives an instance's dashboard URL when a dashboard is known."""
    if as_json:
        rows = [
            {**instance_dict(s), **({"dashboard_url": link(s.instance_id)} if link else {})}
            for s in page.instances
        ]
        emit_json({"instances": rows, "next_cursor": page.next_cursor})
        return
    table = Table(box=None, header_style="bold")
    tagged = any(s.tags for s in page.instances)
    columns = (
        "INSTANCE",
        "NAME",
        "STATUS",
        "VERSION",
        "CREATED",
        "UPDATED",
        *(("TAGS",) if tagged else ()),
        *(("DASHBOARD",) if link else ()),
    )
    for column in columns:
        table.add_column(column, no_wrap=True)
    for s in page.instances:
        table.add_row(
            s.instance_id,
            s.name,
            status_text(s.status),
            s.version or "-",
            local_time(s.created_at),
            local_time(s.updated_at),
            *((tags_text(s.tags),) if tagged else ()),
            *((link(s.instance_id),) if link else ()),
        )
    stdout_console().print(table)
    if page.next_cursor:
        message(f"more instances: --cursor {page.next_cursor}")


def purge_report(report: Mapping[str, Any], *, as_json: bool) -> None:
    """``dtctl purge``: the counts as JSON, or one line on stderr."""
    if as_json:
        emit_json(dict(report))
        return
    by_status = ", ".join(f"{n} {s}" for s, n in sorted(report["by_status"].items())) or "none"
    if report["dry_run"]:
        message(f"would purge {report['matched']} instance(s) ({by_status}); nothing was changed")
    else:
        message(f"purged {report['purged']} instance(s) ({by_status})")


class _Progress:
    def __init__(self, bar: Any, task: Any) -> None:
        self._bar = bar
        self._task = task

    def advance(self, n: int) -> None:
        if self._bar is not None:
            self._bar.advance(self._task, n)


@contextmanager
def progress(total: int, description: str, *, as_json: bool) -> Iterator[_Progress]:
    """A rich progress bar on stderr when it is a terminal (and colour is allowed); otherwise nothing."""
    if as_json or not _color_allowed(sys.stderr) or total <= 0:
        yield _Progress(None, None)
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=stderr_console(),
        transient=True,
    ) as bar:
        yield _Progress(bar, bar.add_task(description, total=total))


def completion_script(shell: str, script: str, *, as_json: bool) -> None:
    if as_json:
        emit_json({"shell": shell, "script": script})
        return
    sys.stdout.write(script + "\n")
