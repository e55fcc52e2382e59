"""What every command shares: the output options, and usage lines that read ``ID NAME``.

``--json`` / ``-o FORMAT`` are accepted before the command (``dtctl --json list``) and after it
(``dtctl list --json``). They are defined once here and attached to every command of the tree when the
root group is built (:class:`DtctlGroup`), so commands added by any module get them without copies.

typer ≥ 0.29 writes required arguments as ``{ID}`` in usage lines; :class:`DtctlCommand` writes ``ID``
(and ``[ID]`` for an optional one), as man pages and most tools do.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterator
from typing import Annotated, Any

import typer
import typer.core
import typer.main

from dtctl.cli import state

OUTPUT_FORMATS = ("json", "text")


def _set_json(value: bool) -> bool:
    if value:
        state.current.json = True
    return value


def _set_output(value: str | None) -> str | None:
    if value is None:
        return None
    if value not in OUTPUT_FORMATS:
        raise typer.BadParameter("must be 'json' or 'text'")
    state.current.json = value == "json"
    return value


def _template(
    json_output: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print only JSON on stdout (shapes in dtctl(1)).",
            callback=_set_json,
            expose_value=False,
        ),
    ] = False,
    output: Annotated[
        str | None,
        typer.Option(
            "--output",
            "-o",
            help="Output format: json or text.",
            metavar="FORMAT",
            callback=_set_output,
            expose_value=False,
        ),
    ] = None,
) -> None:
    """Never run: typer turns its signature into the shared output options."""


@functools.cache
def _template_params() -> tuple[Any, ...]:
    holder = typer.Typer(add_completion=False)
    holder.command()(_template)
    return tuple(typer.main.get_command(holder).params)


def output_options() -> list[Any]:
    """The ``--json`` and ``-o/--output`` options, a copy for each command that gets them."""
    return [copy.copy(param) for param in _template_params()]


def usage_pieces(command: Any, ctx: Any) -> list[str]:
    """The usage line after the command name: ``[OPTIONS] ID NAME``."""
    pieces = [command.options_metavar] if command.options_metavar else []
    for param in command.get_params(ctx):
        if param.param_type_name != "argument":
            pieces.extend(param.get_usage_pieces(ctx))
            continue
        name = param.metavar or (param.name or "").upper()
        name = name if param.required else f"[{name}]"
        pieces.append(name if param.nargs == 1 else f"{name}...")
    return pieces


class DtctlCommand(typer.core.TyperCommand):
    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        return usage_pieces(self, ctx)


def _leaves(group: Any) -> Iterator[Any]:
    for command in group.commands.values():
        if isinstance(getattr(command, "commands", None), dict):
            yield from _leaves(command)
        else:
            yield command


def _has_option(command: Any, name: str) -> bool:
    return any(name in getattr(p, "opts", ()) for p in command.params)


class DtctlGroup(typer.core.TyperGroup):
    """The root group: gives every command the output options and plain usage lines."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.params.extend(output_options())
        for command in _leaves(self):
            if not _has_option(command, "--json"):
                command.params.extend(output_options())
            if type(command) is typer.core.TyperCommand:
                command.__class__ = DtctlCommand  # same state, only the usage line differs

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        # Each invocation starts from defaults (tests run many in one process); option callbacks that
        # run while parsing, here and in the subcommand, then record what the user asked for.
        state.current.close()
        state.current = state.CliState()
        return super().parse_args(ctx, args)
