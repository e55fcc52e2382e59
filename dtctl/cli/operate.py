"""Commands that operate the hub itself: init, hub migrate."""

from __future__ import annotations

import typer

from dtctl.cli import render, state

hub_app = typer.Typer(help="Manage the task hub.", no_args_is_help=True)


def init() -> None:
    """Create the task hub (schema, WAL, private file permissions). Safe to run again.

    Example: dtctl --hub ./orders.db init
    """
    from dtctl.hub import open_hub

    hub = open_hub(state.current.hub, create=True)
    hub.close()
    if state.current.json:
        render.emit_json({"hub": state.current.hub, "created": True})
    else:
        render.message(f"task hub ready: {state.current.hub}")


@hub_app.command("migrate")
def migrate() -> None:
    """Upgrade a hub created by an older dtctl (a backup is written first).

    Example: dtctl hub migrate
    """
    from dtctl.hub import open_hub

    hub = open_hub(state.current.hub, check_schema=False)
    try:
        backup = hub.migrate()  # type: ignore[attr-defined]
        version = hub.schema_version()  # type: ignore[attr-defined]
    finally:
        hub.close()
    result = {"hub": state.current.hub, "version": version, "backup": str(backup) if backup else None}
    if state.current.json:
        render.emit_json(result)
    else:
        render.message(
            f"hub at schema version {result.get('version')}; backup: {result.get('backup') or '-'}"
        )


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.add_typer(hub_app, name="hub")
