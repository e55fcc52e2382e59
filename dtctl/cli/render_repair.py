"""Output of the repair commands: rewind, restart, replay-check, history export / import."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from rich.table import Table

from dtctl.cli import render

if TYPE_CHECKING:
    from dtctl.replaycheck import CheckReport


def done(data: Mapping[str, Any], text: str, as_json: bool) -> None:
    render.done(data, text, as_json=as_json)


def replay_report(report: CheckReport, *, as_json: bool) -> None:
    if as_json:
        render.emit_json(report.as_dict())
        return
    if report.broken:
        table = Table(box=None, pad_edge=False)
        for column in ("INSTANCE", "NAME", "STATUS", "TASK", "RECORDED", "NOW"):
            table.add_column(column, overflow="fold")
        for broken in report.broken:
            m = broken.mismatch
            task = "" if m.task_id is None else str(m.task_id)
            table.add_row(
                broken.instance_id, broken.name, broken.status, task, m.recorded or m.message, m.now or ""
            )
        render.stdout_console().print(table)
    skipped = sum(report.not_registered.values())
    names = ", ".join(sorted(report.not_registered))
    tail = f"; {skipped} skipped (not in the app: {names})" if skipped else ""
    render.message(
        f"replayed {report.checked} instance(s) in {report.seconds:.2f} s: "
        f"{len(report.broken)} would fail{tail}"
    )
