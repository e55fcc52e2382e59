"""Output of ``dtctl history show``: the event table, the followed stream, and the timeline.

Like :mod:`dtctl.cli.render`, these functions only format data they are given. JSON shapes:
an event is ``{"sequence", "execution_id", "timestamp", "kind", …the event's own fields}``; ``--follow
--json`` writes one such object per line (JSON Lines); ``--timeline --json`` writes one object with the
execution and its ``spans``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from rich.table import Table
from rich.text import Text

from dtctl.cli.render import (
    SHORT_PAYLOAD,
    duration,
    emit_json,
    failure_dict,
    failure_text,
    history_dict,
    instance_dict,
    iso,
    local_time,
    message,
    short,
    status_text,
    stdout_console,
)
from dtctl.cli.render_status import instance_detail
from dtctl.client_views import Span, TaskNames, Timeline
from dtctl.core.history import HistoryEvent, event_to_dict

BAR_WIDTH = 48
_FOLLOW_COLUMNS = (("SEQ", 4), ("TIME", 27), ("KIND", 28), ("NAME", 20), ("TASK", 4))
_OUTCOME_STYLES = {
    "completed": "green",
    "fired": "blue",
    "received": "magenta",
    "failed": "bold red",
    "pending": "yellow",
    "unfinished": "dim",
}
_BAR_STYLES = {
    "orchestration": "cyan",
    "activity": "green",
    "sub_orchestration": "green",
    "timer": "blue",
    "queued": "dim",
    "suspended": "yellow",
}
_OPEN_STYLES = {"failed": "bold red", "FAILED": "bold red", "pending": "yellow", "unfinished": "dim"}


# --- the event table ------------------------------------------------------------------------------------


def _summary(event: HistoryEvent, payloads: bool) -> Text:
    data = event_to_dict(event)
    limit = None if payloads else SHORT_PAYLOAD
    failure = data.get("failure")
    if isinstance(failure, dict):
        text = failure_text(failure)
        if payloads and failure.get("stack_trace"):
            text += "\n" + str(failure["stack_trace"]).rstrip()
        return Text(text, style="red")
    parts: list[str] = []
    if "status" in data:
        parts.append(str(data["status"]))
    if data.get("kind") in ("sub_orchestration_created", "event_sent") and data.get("instance_id"):
        parts.append(f"-> {data['instance_id']}")
    if "fire_at" in data:
        parts.append(f"fires {local_time(data['fire_at'])}")
    parts.extend(_version_and_tags(data))
    for key in ("result", "input", "data", "reason"):
        if data.get(key) is not None:
            value = str(data[key])
            parts.append(value if limit is None else short(value, limit))
            break
    if "status" in data and len(parts) == 1:
        return status_text(parts[0])
    return Text(" ".join(parts))


def _version_and_tags(data: dict[str, Any]) -> list[str]:
    """An event's version (execution_started, sub_orchestration_created, continued_as_new) and tags."""
    parts: list[str] = []
    if data.get("version"):
        parts.append(f"version {data['version']}")
    if data.get("new_version"):
        parts.append(f"next version {data['new_version']}")
    tags = data.get("tags")
    if isinstance(tags, dict) and tags:
        parts.append("tags " + ",".join(f"{k}={v}" for k, v in tags.items()))
    return parts


def history_table(records: Iterable[Any], *, as_json: bool, payloads: bool = False) -> None:
    """Print the events as they are read (a long history never sits in memory as one table)."""
    printed = _stream_json_array(records) if as_json else _stream_rows(records, payloads, flush_every=200)
    if not printed and not as_json:
        message("no events in this execution yet: no worker has run an episode of it")


def more_events(last_sequence: int) -> None:
    """After a ``--limit`` page (on stderr, so stdout stays the page): how to read on."""
    message(f"more events follow: add --after {last_sequence} for the next page")


def history_follow(records: Iterable[Any], *, as_json: bool, payloads: bool = False) -> None:
    """Print events as the iterable yields them (``--follow``): JSON Lines, or fixed-width rows."""
    if as_json:
        for record in records:
            sys.stdout.write(json.dumps(history_dict(record), ensure_ascii=False) + "\n")
            sys.stdout.flush()
        return
    _stream_rows(records, payloads, flush_every=1)


def _stream_json_array(records: Iterable[Any]) -> int:
    """A JSON array written element by element (the same document ``emit_json`` would write)."""
    count = 0
    for record in records:
        item = json.dumps(history_dict(record), indent=2, ensure_ascii=False).replace("\n", "\n  ")
        sys.stdout.write(("[\n  " if count == 0 else ",\n  ") + item)
        count += 1
    sys.stdout.write("[]\n" if count == 0 else "\n]\n")
    sys.stdout.flush()
    return count


def _stream_rows(records: Iterable[Any], payloads: bool, *, flush_every: int) -> int:
    """Fixed-width rows, each printed as soon as it is read; returns how many."""
    console = stdout_console()
    header = "  ".join(name.ljust(width) for name, width in _FOLLOW_COLUMNS) + "  DETAIL"
    console.print(Text(header, style="bold"))
    plain = console.color_system is None
    names = TaskNames()
    execution = None
    count = 0
    for record in records:
        if execution is not None and record.execution_id != execution:
            console.print(Text(f"-- execution {record.execution_id} (continued as new) --", style="dim"))
        execution = record.execution_id
        event = record.event
        task = "" if event.task_ref is None else str(event.task_ref)
        cells = (str(record.sequence), local_time(event.timestamp), event.kind, names.of(event), task)
        line = "  ".join(cell.ljust(width) for cell, (_n, width) in zip(cells, _FOLLOW_COLUMNS, strict=True))
        row = Text(line + "  ") + _summary(event, payloads)
        if plain:  # rich's layout per line is most of the time of a long history; plain text needs none
            sys.stdout.write(row.plain.rstrip() + "\n")
        else:
            console.print(row)
        count += 1
        if count % flush_every == 0:
            sys.stdout.flush()
    sys.stdout.flush()
    return count


def demo(final: Any, records: list[Any], *, as_json: bool) -> None:
    """``dtctl demo``: the instance and its history (``{"instance": …, "history": […]}``)."""
    if as_json:
        emit_json({"instance": instance_dict(final), "history": [history_dict(r) for r in records]})
        return
    instance_detail(final, as_json=False)
    message("history:")
    history_table(records, as_json=False)


# --- the timeline -----------------------------------------------------------------------------------------


def span_dict(span: Span) -> dict[str, Any]:
    took = None if span.end is None else span.end - span.start
    return {
        "kind": span.kind,
        "name": span.name,
        "task_id": span.task_id,
        "target": span.target if span.kind != "timer" else None,
        "fire_at": iso(int(span.target)) if span.kind == "timer" and span.target else None,
        "start": iso(span.start),
        "end": iso(span.end),
        "duration_ms": None if took is None else round(took / 1000, 3),
        "outcome": span.outcome,
        "failure": failure_dict(span.failure, with_trace=False),
    }


def timeline_dict(timeline: Timeline) -> dict[str, Any]:
    end = timeline.end
    return {
        "instance_id": timeline.instance_id,
        "execution_id": timeline.execution_id,
        "name": timeline.name,
        "status": timeline.status,
        "start": iso(timeline.start),
        "end": iso(end),
        "duration_ms": None if end is None else round((end - timeline.start) / 1000, 3),
        "spans": [span_dict(s) for s in timeline.spans],
    }


def _glyphs() -> dict[str, str]:
    if (getattr(sys.stdout, "encoding", "") or "").lower().replace("-", "").startswith("utf"):
        return {"done": "█", "open": "▒", "cut": "░", "point": "◆", "blank": "·"}
    return {"done": "#", "open": "=", "cut": "-", "point": "*", "blank": "."}


def _bar(span: Span, start: int, total: int, reference_end: int, glyphs: dict[str, str]) -> Text:
    def column(moment: int) -> int:
        return max(0, min(BAR_WIDTH, round((moment - start) * BAR_WIDTH / total)))

    first = min(column(span.start), BAR_WIDTH - 1)
    bar = Text(glyphs["blank"] * first, style="dim")
    if span.kind == "event":
        bar.append(glyphs["point"], style=_OUTCOME_STYLES["received"])
        last = first + 1
    else:
        last = max(first + 1, column(span.end if span.end is not None else reference_end))
        fill = {"pending": "open", "unfinished": "cut"}.get(span.outcome, "done")
        style = _OPEN_STYLES.get(span.outcome) or _BAR_STYLES.get(span.kind, "cyan")
        bar.append(glyphs[fill] * (last - first), style=style)
    bar.append(glyphs["blank"] * (BAR_WIDTH - last), style="dim")
    return bar


def _span_name(span: Span) -> str:
    if span.kind == "timer" and span.target:
        fires = datetime.fromtimestamp(int(span.target) / 1_000_000, UTC).astimezone()
        return f"until {fires:%H:%M:%S}"
    return span.name


def _result(span: Span) -> Text:
    if span.failure is not None:
        return Text(f"failed: {failure_text(span.failure)}", style="bold red")
    if span.kind == "orchestration":
        return status_text(span.outcome)
    if span.kind == "sub_orchestration" and span.target:
        return Text(f"{span.outcome} ({span.target})", style=_OUTCOME_STYLES.get(span.outcome, ""))
    return Text(span.outcome, style=_OUTCOME_STYLES.get(span.outcome, ""))


def timeline(data: Timeline, *, as_json: bool) -> None:
    """Each activity, timer and sub-orchestration as a bar from scheduled to completed."""
    if as_json:
        emit_json(timeline_dict(data))
        return
    reference_end = data.end if data.end is not None else max(data.now, data.start)
    total = max(reference_end - data.start, 1)
    glyphs = _glyphs()
    console = stdout_console()
    until = local_time(data.end) if data.end is not None else f"now ({local_time(data.now)}, still running)"
    console.print(
        Text.assemble(
            (data.instance_id, "bold"),
            f"  {data.name}  ",
            status_text(data.status),
            f"  execution {data.execution_id}",
        )
    )
    console.print(f"{local_time(data.start)} -> {until}: {duration(reference_end - data.start)}")
    scale = "0".ljust(BAR_WIDTH - len(duration(total))) + duration(total)
    table = Table(box=None, header_style="bold")
    for column in ("TASK", "KIND", "NAME", scale, "START", "TOOK", "RESULT"):
        table.add_column(column, no_wrap=column != "RESULT")
    for span in data.spans:
        took = (span.end if span.end is not None else reference_end) - span.start
        table.add_row(
            "" if span.task_id is None else str(span.task_id),
            span.kind.replace("_", "-"),
            _span_name(span),
            _bar(span, data.start, total, reference_end, glyphs),
            "+" + duration(span.start - data.start),
            "" if span.kind == "event" else duration(took) + ("" if span.end is not None else "+"),
            _result(span),
        )
    console.print(table)
