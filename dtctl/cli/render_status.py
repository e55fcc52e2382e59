"""What ``dtctl status`` and ``dtctl history show`` print about one instance: its detail table and
what it waits for now (split from :mod:`dtctl.cli.render`, which keeps the shared helpers)."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

from dtctl.cli.render import (
    emit_json,
    failure_text,
    instance_dict,
    local_time,
    relative,
    short,
    status_text,
    stdout_console,
    tags_text,
    waiting_dict,
)
from dtctl.client_views import PendingActivity, Unclaimed, WaitingFor
from dtctl.core.history import SUSPENDED
from dtctl.hub.base import InstanceState


def instance_detail(state: InstanceState, *, as_json: bool, full: bool = False) -> None:
    if as_json:
        emit_json(instance_dict(state))
        return
    stdout_console().print(_detail_table(state, full=full))


def status(
    state: InstanceState,
    waiting: WaitingFor,
    *,
    as_json: bool,
    full: bool = False,
    dashboard_url: str | None = None,
) -> None:
    """``dtctl status``: the instance, then what it waits for now (and its dashboard page, if known)."""
    if as_json:
        link = {"dashboard_url": dashboard_url} if dashboard_url else {}
        emit_json({**instance_dict(state), "waiting_for": waiting_dict(waiting), **link})
        return
    table = _detail_table(state, full=full)
    for n, line in enumerate(_waiting_lines(waiting)):
        table.add_row("waiting for" if n == 0 else "", line)
    if dashboard_url:
        table.add_row("dashboard", dashboard_url)
    stdout_console().print(table)


def _waiting_lines(w: WaitingFor) -> list[Text]:
    if w.finished:
        return []
    lines: list[Text] = []
    if w.status == SUSPENDED:
        lines.append(Text(f"suspended: new events are held until `dtctl resume {w.instance_id}`", "yellow"))
    if w.start_at is not None:
        lines.append(Text(f"its start time: {local_time(w.start_at)} ({relative(w.start_at, w.now)})"))
    if w.episode_worker:
        lines.append(
            Text(
                f"an episode running now on worker {w.episode_worker} "
                f"(lease until {local_time(w.episode_lease_expires)})"
            )
        )
    lines += [_activity_line(a, w.now) for a in w.activities]
    for t in w.timers:
        when = "due now; waits for the next episode" if t.state == "due" else relative(t.fire_at, w.now)
        lines.append(Text(f"timer (task {t.task_id}): fires {local_time(t.fire_at)} ({when})"))
    for c in w.sub_orchestrations:
        state_text = (
            "finished; its result waits for the next episode"
            if c.state == "result_pending"
            else (c.status or "missing")
        )
        lines.append(
            Text(f"sub-orchestration {c.name} (task {c.task_id}) -> {c.instance_id}: ")
            + status_text(state_text)
        )
    lines.extend(_entity_lines(w))
    visible = [e for e in w.new_events if e.visible]
    if visible:
        names = ", ".join(e.kind + (f" {e.name}" if e.name else "") for e in visible[:5])
        more = f" and {len(visible) - 5} more" if len(visible) > 5 else ""
        lines.append(Text(f"{len(visible)} new event(s) for its next episode: {names}{more}"))
    received = ", ".join(w.events_received) or "none"
    buffered = f"; not processed yet: {', '.join(w.events_buffered)}" if w.events_buffered else ""
    lines.append(
        Text(
            "external events: awaited only in the orchestrator's code; "
            f"received so far: {received}{buffered}",
            "dim",
        )
    )
    lines.extend(_unclaimed_lines(w.unclaimed))
    return lines


def _activity_line(a: PendingActivity, now: int) -> Text:
    label = f"activity {a.name} (task {a.task_id}): "
    if a.state == "running":
        return Text(
            label + f"running on worker {a.worker}, attempt {a.attempts}, "
            f"scheduled {relative(a.scheduled_at, now)}, lease until {local_time(a.lease_expires)}"
        )
    if a.state == "queued":
        later = f", not before {local_time(a.visible_at)}" if a.visible_at and a.visible_at > now else ""
        retried = f", {a.attempts} earlier attempt(s)" if a.attempts else ""
        return Text(label + f"queued for a worker since {relative(a.scheduled_at, now)}{later}{retried}")
    if a.state == "result_pending":
        return Text(label + "finished; its result waits for the next episode")
    return Text(label + "scheduled, but neither queued nor answered", "yellow")


def _entity_lines(w: WaitingFor) -> list[Text]:
    lines: list[Text] = []
    for r in w.entity_requests:
        pending = r.state == "result_pending"
        if r.kind == "call":
            what = (
                "responded; the response waits for the next episode"
                if pending
                else "waiting for its response"
            )
            lines.append(Text(f"entity call {r.operation} on {r.entity_ids[0]} (task {r.task_id}): {what}"))
            continue
        if pending:
            lines.append(
                Text(f"entity locks {', '.join(r.entity_ids)} (task {r.task_id}): granted, next episode")
            )
            continue
        held = [
            f"{e} held by {h}"
            for e, h in zip(r.entity_ids, r.held_by, strict=False)
            if h and h != w.instance_id
        ]
        detail = f" ({'; '.join(held)})" if held else ""
        lines.append(
            Text(f"entity locks {', '.join(r.entity_ids)} (task {r.task_id}): waiting{detail}", "yellow")
        )
    return lines


def _unclaimed_lines(unclaimed: Unclaimed) -> list[Text]:
    if not unclaimed:
        return []
    if unclaimed.live_workers == 0:
        return [Text("no live worker on this hub: start one with `dtctl worker APP`", "bold yellow")]
    out = [
        Text(f"no live worker has registered orchestrator {name!r}", "bold yellow")
        for name in unclaimed.orchestrations
    ]
    out += [
        Text(f"no live worker has registered activity {name!r}", "bold yellow")
        for name in unclaimed.activities
    ]
    if unclaimed.version_refused:
        version = repr(unclaimed.version) if unclaimed.version else "(none)"
        out.append(
            Text(
                f"no live worker accepts version {version}: the workers that have this orchestrator "
                "match other versions (see `dtctl workers`)",
                "bold yellow",
            )
        )
    return out


def _version_rows(state: InstanceState) -> list[tuple[str, Text | str]]:
    rows: list[tuple[str, Text | str]] = [("version", state.version or "(none)")]
    return [*rows, ("tags", tags_text(state.tags))] if state.tags else rows


def _detail_table(state: InstanceState, *, full: bool) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    payloads = _payload_rows(state, limit=None if full else 200)
    rows = _identity_rows(state) + payloads + _state_rows(state, full)
    for label, value in rows:
        table.add_row(label, value)
    return table


Row = tuple[str, Text | str]


def _identity_rows(state: InstanceState) -> list[Row]:
    rows: list[Row] = [
        ("instance", state.instance_id),
        ("name", state.name),
        ("status", status_text(state.status)),
        ("execution", state.execution_id),
        *_version_rows(state),
        ("created", local_time(state.created_at)),
        ("updated", local_time(state.updated_at)),
    ]
    optional = (
        ("completed", state.completed_at and local_time(state.completed_at)),
        ("previous execution", state.previous_execution_id),
        ("parent", state.parent_instance_id),
    )
    return rows + [(label, value) for label, value in optional if value]


def _payload_rows(state: InstanceState, *, limit: int | None) -> list[Row]:
    payloads = (("input", state.input), ("output", state.output), ("custom status", state.custom_status))
    return [
        (label, text if limit is None else short(text, limit)) for label, text in payloads if text is not None
    ]


def _state_rows(state: InstanceState, full: bool) -> list[Row]:
    rows: list[Row] = []
    if state.scheduled_start and state.status == "PENDING":
        rows.append(("starts", local_time(state.scheduled_start)))
    if state.failure:
        rows.append(("failure", Text(failure_text(state.failure), style="red")))
        if full and state.failure.stack_trace:
            rows.append(("", Text(state.failure.stack_trace.rstrip(), style="red")))
    if state.lease_owner:
        rows.append(("leased by", f"{state.lease_owner} until {local_time(state.lease_expires)}"))
    rows.append(("history", f"{state.history_length} events"))
    return rows
