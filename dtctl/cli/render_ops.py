"""Output of the operator commands: scale-recommend, workers, top, doctor, hub backup.

Same rules as :mod:`dtctl.cli.render`: commands hand data here and never format it; ``--json`` prints
only JSON on stdout (times ISO-8601 UTC, durations in milliseconds or seconds as the key says);
messages go to stderr. The JSON shapes are part of the CLI contract (documented in each command's help).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from dtctl.cli import render
from dtctl.hub.base import Finding, NameBacklog, QueueDepth, WaitingItem, WorkerInfo, WorkWindow
from dtctl.ops import TopView, WorkerHealth, describe_backlog
from dtctl.scale import ScaleRecommendation

US = 1_000_000
SEVERITY_STYLES = {"ok": "green", "warning": "yellow", "problem": "bold red"}


# --- small values ------------------------------------------------------------------------------------


def ms(us: int | None) -> float | None:
    return None if us is None else round(us / 1000, 3)


def span(us: int | None) -> str:
    """A duration for people: 0.8 ms, 12 ms, 1.52 s, 2m 03s."""
    if us is None:
        return "-"
    us = max(us, 0)
    if us < 10_000:
        return f"{us / 1000:.1f} ms"
    if us < US:
        return f"{us / 1000:.0f} ms"
    seconds = us / US
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def rate(count: int, seconds: float) -> float:
    return round(count / seconds, 2) if seconds > 0 else 0.0


def _percent(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(100.0 * part / whole, 2)


# --- scale-recommend ------------------------------------------------------------------------------------


def recommendation_dict(rec: ScaleRecommendation) -> dict[str, Any]:
    m = rec.metrics
    return {
        "recommended_workers": rec.recommended_workers,
        "formula": "ceil(live_orchestrations / max_orchestrations) + ceil(live_activities / max_activities)",
        "orchestration_workers": rec.orchestration_workers,
        "activity_workers": rec.activity_workers,
        "live_orchestrations": rec.live_orchestrations,
        "live_activities": rec.live_activities,
        "max_orchestrations": rec.max_orchestrations,
        "max_activities": rec.max_activities,
        "breakdown": {
            "leased_orchestrations": m.leased_orchestrations,
            "visible_inbox_instances": m.visible_inbox_instances,
            "future_timers": m.future_timers,
            "scheduled_activities": m.scheduled_activities,
        },
    }


def formula_text(rec: ScaleRecommendation) -> str:
    return (
        f"{rec.recommended_workers} = ceil({rec.live_orchestrations} live orchestrations / "
        f"{rec.max_orchestrations}) + ceil({rec.live_activities} live activities / {rec.max_activities})"
    )


def recommendation(rec: ScaleRecommendation, *, as_json: bool) -> None:
    if as_json:
        render.emit_json(recommendation_dict(rec))
        return
    print(rec.recommended_workers, flush=True)
    m = rec.metrics
    render.message(
        f"workers: {formula_text(rec)} "
        f"({m.leased_orchestrations} instances leased, {m.future_timers} future timers and "
        f"{m.scheduled_activities - rec.live_activities} later activities not counted)"
    )


def keda(yaml_text: str) -> None:
    print(yaml_text, end="", flush=True)


# --- workers ----------------------------------------------------------------------------------------------


def worker_dict(h: WorkerHealth) -> dict[str, Any]:
    w = h.info
    return {
        "worker_id": w.worker_id,
        "host": w.host,
        "pid": w.pid,
        "state": "live" if h.live else "lost",
        "started_at": render.iso(w.started_at),
        "heartbeat_at": render.iso(w.heartbeat_at),
        "heartbeat_age_seconds": round(h.heartbeat_age, 3),
        "orchestrations": {"leased": h.orchestrations, "max": w.max_orchestrations},
        "activities": {"leased": h.activities, "running": w.inflight_activities, "max": w.max_activities},
        "entities": {"max": w.extra.get("max_entities", 0)},
        "registered": {
            "orchestrations": list(w.orchestrations),
            "activities": list(w.activities),
            "entities": list(_entity_names(w.extra)),
        },
        "versioning": _versioning_dict(w),
    }


def _versioning_dict(w: WorkerInfo) -> dict[str, Any] | None:
    """The worker's version and strategies as it reported them (None: it runs every version)."""
    match = w.extra.get("version_match")
    if not isinstance(match, str):
        return None
    return {key: w.extra.get(key) for key in ("version", "version_match", "version_failure")}


def _versioning_text(w: WorkerInfo) -> str:
    found = _versioning_dict(w)
    if found is None:
        return "-"
    version = found["version"] or "(none)"
    return f"{version} {found['version_match']}/{found['version_failure']}"


def _entity_names(extra: dict[str, object]) -> list[str]:
    names = extra.get("entities")
    return [str(n) for n in names] if isinstance(names, list) else []


def _names(h: WorkerHealth, limit: int = 4) -> str:
    names = [*h.info.orchestrations, *h.info.activities, *(f"@{n}" for n in _entity_names(h.info.extra))]
    shown = ", ".join(names[:limit])
    return shown + (f" +{len(names) - limit}" if len(names) > limit else "")


def worker_table(health: Sequence[WorkerHealth], *, with_names: bool = True) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    columns = ["WORKER", "PID", "STATE", "HEARTBEAT", "STARTED", "ORCH/MAX", "ACT/MAX", "VERSION"]
    for column in [*columns, *(["REGISTERED"] if with_names else [])]:
        table.add_column(column, no_wrap=column != "REGISTERED", justify="right" if "/" in column else "left")
    for h in health:
        w = h.info
        table.add_row(
            w.worker_id,
            str(w.pid),
            Text("live", style="green") if h.live else Text("lost", style="bold red"),
            f"{h.heartbeat_age:.1f}s ago",
            render.local_time(w.started_at),
            f"{h.orchestrations}/{w.max_orchestrations}",
            f"{h.activities}/{w.max_activities}",
            _versioning_text(w),
            *([_names(h)] if with_names else []),
        )
    return table


def workers(health: Sequence[WorkerHealth], *, as_json: bool, forgotten: Sequence[str] = ()) -> None:
    if as_json:
        render.emit_json({"workers": [worker_dict(h) for h in health], "forgotten": list(forgotten)})
        return
    if health:
        render.stdout_console().print(worker_table(health))
    else:
        render.message("no workers: none has sent a heartbeat to this hub (or all stopped cleanly)")
    lost = sum(1 for h in health if not h.live)
    if lost:
        render.message(
            f"{lost} lost worker(s): their heartbeat stopped; `dtctl workers --forget-lost` removes them"
        )
    if forgotten:
        render.message(f"forgot {len(forgotten)} lost worker(s): {', '.join(forgotten)}")


# --- top ----------------------------------------------------------------------------------------------


def _waiting_dict(item: WaitingItem | None, now: int) -> dict[str, Any] | None:
    if item is None:
        return None
    return {
        "kind": item.kind,
        "name": item.name,
        "instance_id": item.instance_id,
        "visible_at": render.iso(item.visible_at),
        "age_seconds": round(max(0, now - item.visible_at) / US, 3),
    }


def _queue_dict(queue: QueueDepth, now: int) -> dict[str, Any]:
    return {
        "visible": queue.visible,
        "leased": queue.leased,
        "waiting": queue.visible - queue.leased,
        "later": queue.later,
        "oldest_waiting": _waiting_dict(queue.oldest, now),
    }


def _latency_dict(work: WorkWindow) -> dict[str, Any]:
    return {
        "samples": work.samples,
        "schedule_to_start_ms": {
            "p50": ms(work.schedule_to_start_p50),
            "p95": ms(work.schedule_to_start_p95),
        },
        "start_to_complete_ms": {
            "p50": ms(work.start_to_complete_p50),
            "p95": ms(work.start_to_complete_p95),
        },
    }


def backlog_dict(b: NameBacklog, now: int) -> dict[str, Any]:
    return {
        "kind": b.kind,
        "name": b.name,
        "count": b.count,
        "oldest_visible_at": render.iso(b.oldest_visible_at),
        "age_seconds": round(max(0, now - b.oldest_visible_at) / US, 3),
    }


def top_dict(view: TopView, hub: str) -> dict[str, Any]:
    s = view.snapshot
    window = s.window_seconds
    finished = s.instances.completed + s.instances.failed + s.instances.terminated
    live = [h for h in view.workers if h.live]
    oldest = [q.oldest for q in (s.inbox, s.activity_queue) if q.oldest is not None]
    return {
        "hub": hub,
        "at": render.iso(s.at),
        "window_seconds": window,
        "queues": {
            "orchestration_inbox": _queue_dict(s.inbox, s.at),
            "activity_queue": _queue_dict(s.activity_queue, s.at),
        },
        "entity_queue": _entity_dict(view),
        "oldest_waiting": _waiting_dict(min(oldest, key=lambda i: i.visible_at) if oldest else None, s.at),
        "instances": {
            "pending": s.instances.pending,
            "running": s.instances.running,
            "suspended": s.instances.suspended,
            "finished_in_window": {
                "completed": s.instances.completed,
                "failed": s.instances.failed,
                "terminated": s.instances.terminated,
            },
        },
        "throughput_per_second": {
            "orchestrations_completed": rate(s.instances.completed, window),
            "orchestrations_finished": rate(finished, window),
            "episodes": rate(s.orchestration_work.finished, window),
            "activities": rate(s.activity_work.finished, window),
        },
        "latency": {
            "orchestration_episodes": _latency_dict(s.orchestration_work),
            "activities": _latency_dict(s.activity_work),
        },
        "failures": {
            "orchestrations": s.instances.failed,
            "activities": s.activity_work.failed,
            "orchestration_failure_rate_percent": _percent(s.instances.failed, finished),
            "activity_failure_rate_percent": _percent(s.activity_work.failed, s.activity_work.finished),
            "by_name": [{"kind": f.kind, "name": f.name, "count": f.count} for f in s.failures],
        },
        "workers": {
            "live": len(live),
            "lost": len(view.workers) - len(live),
            "slots": {
                "orchestrations": {
                    "leased": sum(h.orchestrations for h in live),
                    "limit": sum(h.info.max_orchestrations for h in live),
                },
                "activities": {
                    "leased": sum(h.activities for h in live),
                    "limit": sum(h.info.max_activities for h in live),
                },
            },
            "list": [worker_dict(h) for h in view.workers],
        },
        "unclaimable_backlog": [backlog_dict(b, s.at) for b in view.unclaimable],
        "scale": recommendation_dict(view.recommendation),
    }


def _grid() -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False, padding=(0, 2))
    return table


def _entity_dict(view: TopView) -> dict[str, Any] | None:
    e = view.entities
    if e is None:
        return None
    return {
        "entities": e.entities,
        "ready": e.ready,
        "leased": e.leased,
        "locked": e.locked,
        "orphaned_locks": e.orphaned_locks,
        "oldest_ready_at": render.iso(e.oldest_ready_at),
    }


def _oldest_text(item: WaitingItem | None, now: int) -> str:
    if item is None:
        return "-"
    return f"{span(now - item.visible_at)}  {item.name} ({item.instance_id})"


def top_renderable(view: TopView, hub: str) -> RenderableType:
    s = view.snapshot
    window = s.window_seconds
    title = Text.assemble(
        ("dtctl top", "bold"), f"  {hub}  ", (render.local_time(s.at), "dim"), f"  window {window:g}s"
    )
    queues = _grid()
    for column in ("QUEUE", "READY", "LEASED", "LATER", "OLDEST WAITING"):
        queues.add_column(column, justify="left" if column in ("QUEUE", "OLDEST WAITING") else "right")
    for label, q in (("orchestration inbox", s.inbox), ("activity queue", s.activity_queue)):
        queues.add_row(label, str(q.visible), str(q.leased), str(q.later), _oldest_text(q.oldest, s.at))
    e = view.entities
    if e is not None and e.entities:
        oldest = "-" if e.oldest_ready_at is None else span(e.at - e.oldest_ready_at)
        locks = f"  ({e.locked} locked, {e.orphaned_locks} orphaned)" if e.locked else ""
        queues.add_row("entity queue", str(e.ready), str(e.leased), "-", oldest + locks)

    i = s.instances
    finished = i.completed + i.failed + i.terminated
    instances = Text(
        f"instances: {i.pending} pending, {i.running} running, {i.suspended} suspended; "
        f"last {window:g}s: {i.completed} completed, {i.failed} failed, {i.terminated} terminated"
    )
    throughput = Text(
        f"throughput: {rate(i.completed, window):g} orchestrations completed/s, "
        f"{rate(s.orchestration_work.finished, window):g} episodes/s, "
        f"{rate(s.activity_work.finished, window):g} activities/s"
    )
    latency = _grid()
    for column in ("LATENCY (p50 / p95)", "SCHEDULE->START", "START->COMPLETE", "SAMPLES"):
        latency.add_column(column, justify="right" if column == "SAMPLES" else "left")
    for label, w in (("orchestration episodes", s.orchestration_work), ("activities", s.activity_work)):
        latency.add_row(
            label,
            f"{span(w.schedule_to_start_p50)} / {span(w.schedule_to_start_p95)}",
            f"{span(w.start_to_complete_p50)} / {span(w.start_to_complete_p95)}",
            str(w.samples),
        )
    failed_names = ", ".join(f"{f.kind} {f.name} x{f.count}" for f in s.failures)
    act_rate = _percent(s.activity_work.failed, s.activity_work.finished)
    failures = Text(
        f"failures (last {window:g}s): {i.failed} orchestrations"
        + (f" ({_percent(i.failed, finished)}%)" if finished else "")
        + f", {s.activity_work.failed} activities"
        + (f" ({act_rate}%)" if act_rate is not None else "")
        + (f": {failed_names}" if failed_names else ""),
        style="red" if (i.failed or s.activity_work.failed) else "",
    )
    live = [h for h in view.workers if h.live]
    orch_slots = f"{sum(h.orchestrations for h in live)}/{sum(h.info.max_orchestrations for h in live)}"
    act_slots = f"{sum(h.activities for h in live)}/{sum(h.info.max_activities for h in live)}"
    workers_line = Text(
        f"workers: {len(live)} live, {len(view.workers) - len(live)} lost; "
        f"leases held/limit: orchestrations {orch_slots}, activities {act_slots}"
    )
    parts: list[RenderableType] = [
        title,
        Text(""),
        queues,
        instances,
        throughput,
        Text(""),
        latency,
        failures,
    ]
    parts += [Text(""), workers_line]
    if view.workers:
        parts.append(worker_table(view.workers, with_names=False))
    if view.unclaimable:
        parts.append(
            Text(f"no live worker can take: {describe_backlog(view.unclaimable)}", style="bold yellow")
        )
    parts.append(Text(f"scale recommendation: {formula_text(view.recommendation)}", style="bold"))
    return Group(*parts)


def top_once(view: TopView, hub: str, *, as_json: bool) -> None:
    if as_json:
        render.emit_json(top_dict(view, hub))
    else:
        render.stdout_console().print(top_renderable(view, hub))


# --- doctor ------------------------------------------------------------------------------------------------


def finding_dict(f: Finding) -> dict[str, Any]:
    return {"check": f.check, "severity": f.severity, "area": f.area, "message": f.message, "hint": f.hint}


def doctor(findings: Sequence[Finding], hub: str, exit_code: int, *, as_json: bool) -> None:
    if as_json:
        render.emit_json(
            {"hub": hub, "exit_code": exit_code, "findings": [finding_dict(f) for f in findings]}
        )
        return
    table = Table(box=None, show_header=False, pad_edge=False, padding=(0, 2))
    table.add_column(no_wrap=True)
    table.add_column(no_wrap=True)
    table.add_column()
    for f in findings:
        message = Text(f.message)
        if f.hint and f.severity != "ok":
            message.append(f"\nhint: {f.hint}", style="dim")
        table.add_row(Text(f.severity, style=SEVERITY_STYLES[f.severity]), f.check, message)
    render.stdout_console().print(table)
    problems = sum(1 for f in findings if f.severity == "problem")
    warnings = sum(1 for f in findings if f.severity == "warning")
    render.message(f"doctor: {problems} problem(s), {warnings} warning(s) in {hub}")


# --- hub backup, and notes for other commands ---------------------------------------------------------------


def backup_done(hub: str, path: str, size: int, *, as_json: bool) -> None:
    if as_json:
        render.emit_json({"hub": hub, "backup": path, "bytes": size})
    else:
        render.message(f"backup of {hub} written to {path} ({size} bytes, verified)")


def unclaimable_note(items: Sequence[NameBacklog], live_workers: int) -> None:
    """A one-line stderr note for ``dtctl list`` / ``status``: ready work no live worker can take."""
    if not items:
        return
    why = "no worker is running" if live_workers == 0 else "no live worker registered these names"
    render.message(f"note: ready work no live worker can take ({why}): {describe_backlog(items)}")
