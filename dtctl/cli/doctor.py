"""``dtctl doctor``: is the hub healthy, and why is work not moving?"""

from __future__ import annotations

from typing import Annotated

import typer

from dtctl.cli import render_ops, state
from dtctl.cli.workersview import LostAfter


def doctor(
    full: Annotated[
        bool,
        typer.Option("--full", help="SQLite: run integrity_check (reads every page) instead of quick_check."),
    ] = False,
    max_dequeue: Annotated[
        int,
        typer.Option(
            "--max-dequeue", min=1, help="The workers' poison limit (leases per work item).", metavar="N"
        ),
    ] = 5,
    history_threshold: Annotated[
        int,
        typer.Option(
            "--history-threshold", min=1, help="History events from which replay counts as slow.", metavar="N"
        ),
    ] = 10_000,
    lost_after: LostAfter = None,
) -> None:
    """Check the hub's store and look for stuck work; exit 0 when healthy (warnings allowed).

    Hub checks, SQLite: schema version, journal mode (WAL) and synchronous, quick_check (integrity_check
    with --full), the SQLite library version (warns inside the WAL-reset bug range 3.7.0-3.51.2), the
    file system (network file systems are unsafe), file permissions (0600), links, and the -wal size.
    PostgreSQL: schema version, server version, durability settings (fsync, full_page_writes,
    synchronous_commit), the connected role's rights (a problem when it cannot read and write every hub
    table, a warning when it can create objects: workers should use a `dtctl hub init --role` role) and
    the connection (a warning when unencrypted to another host); the password is never shown.
    Work checks: lost workers, expired leases nobody took over, poison candidates (work items at the
    dequeue limit), ready work no live worker registered, live instances whose history is long enough
    to slow replay (continue-as-new fixes that), entity locks held by orchestrations that are gone or
    finished (dtctl entity clean releases them), entity operations ready for a minute that no worker took.

    Exit status: 0 no problems (warnings allowed); 4 stuck work was found; 8 the hub itself has a
    problem (it cannot be opened safely, is damaged, has the wrong schema version, unsafe settings, a
    network file system, loose write permissions, or a role without the runtime grants). --json prints
    {"hub", "exit_code", "findings": [{check, severity (ok|warning|problem), area (hub|work), message,
    hint}]}.

    Example: dtctl doctor --full
    """
    from dtctl import admin, ops
    from dtctl.errors import ExitCode, HubUnsafe, SchemaVersionMismatch
    from dtctl.hub.base import Finding

    where = admin.redact(state.current.hub)
    try:
        hub = admin.open_for_inspection(state.current.hub)
    except (HubUnsafe, SchemaVersionMismatch) as exc:
        findings = [Finding(check="open", severity="problem", message=exc.message, hint=exc.hint)]
        render_ops.doctor(findings, where, ExitCode.HUB_UNSAFE, as_json=state.current.json)
        raise typer.Exit(ExitCode.HUB_UNSAFE) from None
    try:
        findings = hub.storage_findings(full=full)
        if all(f.severity != "problem" for f in findings if f.check == "schema-version"):
            stuck = hub.stuck_work(max_dequeue=max_dequeue, history_threshold=history_threshold)
            health = ops.worker_health(hub.list_workers(), hub.lease_holders(), stuck.at, lost_after)
            findings += ops.work_findings(
                stuck,
                hub.backlog_by_name(),
                health,
                max_dequeue=max_dequeue,
                history_threshold=history_threshold,
            )
            findings += ops.entity_findings(hub.entity_health())
    finally:
        hub.close()
    code = ops.doctor_exit_code(findings)
    render_ops.doctor(findings, where, code, as_json=state.current.json)
    if code:
        raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor)
