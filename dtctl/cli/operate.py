"""Commands that operate the hub itself: init, hub migrate, hub backup."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dtctl.cli import render, state

hub_app = typer.Typer(help="Manage the task hub.", no_args_is_help=True)


def init() -> None:
    """Create the task hub (schema, WAL, private file permissions). Safe to run again.

    Example: dtctl --hub ./orders.db init
    """
    from dtctl import admin

    admin.init_hub(state.current.hub)
    if state.current.json:
        render.emit_json({"hub": state.current.hub_shown, "created": True})
    else:
        render.message(f"task hub ready: {state.current.hub_shown}")


@hub_app.command("migrate")
def migrate() -> None:
    """Upgrade a hub created by an older dtctl (a backup is written first).

    Example: dtctl hub migrate
    """
    from dtctl import admin

    migrated = admin.migrate_hub(state.current.hub)
    backup = migrated.backup
    result = {
        "hub": state.current.hub_shown,
        "version": migrated.version,
        "backup": str(backup) if backup else None,
    }
    if state.current.json:
        render.emit_json(result)
    else:
        render.message(
            f"hub at schema version {result.get('version')}; backup: {result.get('backup') or '-'}"
        )


@hub_app.command("backup")
def backup(
    path: Annotated[Path, typer.Argument(help="Where to write the copy (must not exist).", metavar="PATH")],
) -> None:
    """Write a consistent copy of a SQLite hub to PATH, safe while workers run (VACUUM INTO).

    The copy is compacted, checked (quick_check, schema version) and only then renamed to PATH, with
    mode 0600. Restore by stopping the workers and moving the copy into the hub's place (remove the
    old -wal and -shm files with it). A PostgreSQL hub is backed up with pg_dump --schema dtctl_NAME.
    --json prints {"hub", "backup", "bytes"}.

    Example: dtctl hub backup /backups/taskhub-$(date +%F).db
    """
    from dtctl import admin
    from dtctl.cli import render_ops

    written = admin.backup_hub(state.current.hub, path)
    render_ops.backup_done(
        admin.redact(state.current.hub), str(written), written.stat().st_size, as_json=state.current.json
    )


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.add_typer(hub_app, name="hub")
    __import__("dtctl.cli.hubcmds", fromlist=["register"]).register(hub_app)  # hub init, hub info
