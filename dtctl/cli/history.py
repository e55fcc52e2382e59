"""``dtctl history show``: an instance's event history."""

from __future__ import annotations

from typing import Annotated

import typer

from dtctl.cli import render, state

history_app = typer.Typer(help="Inspect instance histories.", no_args_is_help=True)


@history_app.command("show")
def show(
    instance_id: Annotated[str, typer.Argument(help="The instance id.", metavar="ID")],
    payloads: Annotated[bool, typer.Option("--payloads", help="Show payloads in full.")] = False,
    execution: Annotated[
        str | None, typer.Option("--execution", help="An earlier execution id (after continue-as-new).")
    ] = None,
) -> None:
    """Show the event history of an instance, oldest first.

    Example: dtctl history show order-1 --payloads
    """
    client = state.current.client()
    client.get_instance_or_raise(instance_id)
    records = client.get_history(instance_id, execution_id=execution)
    render.history_table(records, as_json=state.current.json, payloads=payloads)


def register(app: typer.Typer) -> None:
    app.add_typer(history_app, name="history")
