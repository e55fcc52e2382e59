"""Rendering of ``dtctl serve --status``: one serve process, its SDK worker streams and what they hold."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.table import Table

from dtctl.cli import render


def serve_status(found: Mapping[str, Any], *, as_json: bool) -> None:
    if as_json:
        render.emit_json(found)
        return
    held = found["items_held"]
    counters = found["counters"]
    state = "serving" if found["serving"] else "draining"
    lines = [
        f"dtctl serve pid {found['pid']} on {found['hub']}: {state}, up {found['uptime_s']} s",
        f"{found['workers']} SDK worker stream(s); holding {held['orchestrations']} orchestration and "
        f"{held['activities']} activity work item(s)",
        f"since start: {counters['episodes']} episodes, {counters['activities']} activities, "
        f"{counters['refused']} refused completions, {counters['group_commits']} group commits",
    ]
    console = render.stdout_console()
    for line in lines:
        console.print(line, markup=False, highlight=False)
    if not found["streams"]:
        return
    table = Table(box=None, pad_edge=False)
    for column in ("WORKER", "PEER", "ORCH/MAX", "ACT/MAX", "NAMES"):
        table.add_column(column)
    for s in found["streams"]:
        table.add_row(
            s["worker_id"],
            s["peer"],
            f"{s['held_orchestrations']}/{s['max_orchestrations']}",
            f"{s['held_activities']}/{s['max_activities']}",
            ", ".join([*s["orchestrations"], *s["activities"]]),
        )
    console.print(table)
