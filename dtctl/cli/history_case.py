"""``dtctl history export`` and ``dtctl history import``: one instance as a case file, for bug reports."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from dtctl.cli import parse, render_repair, state
from dtctl.cli.history import history_app


def export(
    instance_id: Annotated[
        str, typer.Argument(help="The instance id.", metavar="ID", callback=parse.instance_id)
    ],
) -> None:
    """Write the instance as a self-contained JSON case file on stdout.

    The document holds a format version, the instance row and the history of every stored execution
    (the current one and the one before it) as dtctl encodes its events; it is written page by page.
    `dtctl history import` loads it into another hub, `dtctl replay-check APP --from-file` and
    dtctl.testing.replay_case replay it.

    Example: dtctl history export order-1 > case.json
    """
    for chunk in state.current.client().export_case(instance_id):
        sys.stdout.write(chunk)
    sys.stdout.flush()


def import_case(
    file: Annotated[
        Path, typer.Argument(help="A case file written by dtctl history export.", metavar="FILE")
    ],
) -> None:
    """Load an exported case file into this hub, as it was stored.

    Refuses an instance id the hub has already (exit 4); a malformed file exits 2. Nothing is queued for
    the imported instance: it is there to be read (status, history show) and replayed (replay-check).

    Example: dtctl --hub other.db history import case.json
    """
    instance_id = state.current.client().import_case(file)
    render_repair.done(
        {"instance_id": instance_id, "imported": True}, f"imported {instance_id}", state.current.json
    )


def register() -> None:
    """Add export and import to ``dtctl history``."""
    history_app.command("export")(export)
    history_app.command("import")(import_case)
