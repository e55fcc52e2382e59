"""The ``dtctl`` command: global options, command registration, and the one error boundary."""

from __future__ import annotations

import sys
import traceback
from typing import Annotated

import typer

from dtctl import __version__
from dtctl.cli import clicks, demo, history, instances, operate, render, state, workers
from dtctl.errors import DtctlError, ExitCode

EPILOG = (
    "Exit codes: 0 ok, 1 internal error, 2 usage, 3 not found, 4 conflict or invalid state, "
    "5 --wait ended FAILED/TERMINATED, 6 timed out or hub busy, 7 schema version mismatch, "
    "8 hub unsafe or corrupt. Environment: DTCTL_HUB (the hub), NO_COLOR (plain output)."
)

app = typer.Typer(
    name="dtctl",
    help="The Durable Task Framework for Python: run and operate durable orchestrations.",
    epilog=EPILOG,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(f"dtctl {__version__}\n")
        raise typer.Exit(0)


@app.callback()
def root(
    hub: Annotated[
        str,
        typer.Option(
            "--hub", envvar="DTCTL_HUB", help="Task hub: a SQLite file path (default ./taskhub.db)."
        ),
    ] = state.DEFAULT_HUB,
    json_output: Annotated[bool, typer.Option("--json", help="Print only JSON on stdout.")] = False,
    output: Annotated[
        str | None, typer.Option("--output", "-o", help="Output format: 'json' or 'text'.", metavar="FORMAT")
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show tracebacks of internal errors.")
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    if output not in (None, "json", "text"):
        raise typer.BadParameter("must be 'json' or 'text'", param_hint="--output")
    state.current = state.CliState(hub=hub, json=json_output or output == "json", verbose=verbose)


instances.register(app)
history.register(app)
workers.register(app)
operate.register(app)
demo.register(app)


def run(argv: list[str] | None = None) -> int:
    """The console-script entry point; returns (and exits with) the documented exit code."""
    code = main(argv)
    sys.exit(code)


def main(argv: list[str] | None = None) -> int:
    verbose = "-v" in (argv or sys.argv[1:]) or "--verbose" in (argv or sys.argv[1:])
    try:
        result = app(args=argv, prog_name="dtctl", standalone_mode=False)
        return result if isinstance(result, int) else ExitCode.OK
    except typer.Exit as exc:
        return int(getattr(exc, "exit_code", 0) or 0)
    except typer.Abort:
        render.error("aborted")
        return 130
    except clicks.ClickException as exc:
        exc.show()  # type: ignore[attr-defined]
        return ExitCode.USAGE
    except DtctlError as exc:
        render.error(exc.message, exc.hint)
        return exc.exit_code
    except KeyboardInterrupt:
        render.error("interrupted")
        return 130
    except Exception as exc:
        render.error(
            f"internal error: {type(exc).__name__}: {exc}",
            None if verbose else "run with -v for the traceback",
        )
        if verbose:
            traceback.print_exc()
        return ExitCode.INTERNAL
    finally:
        state.current.close()
