"""The ``dtctl`` command: global options, command registration, and the one error boundary."""

from __future__ import annotations

import functools
import os
import sys
import traceback
from typing import Annotated, Any

import typer
import typer.main

from dtctl import __version__
from dtctl.cli import (
    clicks,
    completion,
    dashboard,
    demo,
    doctor,
    entity,
    history,
    history_case,
    instances,
    metrics,
    operate,
    purge,
    render,
    repair,
    scale,
    serve,
    state,
    top,
    workers,
    workersview,
)
from dtctl.cli.options import DtctlGroup
from dtctl.errors import DtctlError, ExitCode

EPILOG = (
    "Exit codes: 0 ok, 1 internal error, 2 usage, 3 not found, 4 conflict or invalid state, "
    "5 --wait ended FAILED/TERMINATED, 6 timed out or hub busy, 7 schema version mismatch, "
    "8 hub unsafe or corrupt. Environment: DTCTL_HUB (the hub), NO_COLOR (plain output). "
    "--json and -o FORMAT go before or after the command name."
)

app = typer.Typer(
    name="dtctl",
    cls=DtctlGroup,
    help="The Durable Task Framework for Python: run and operate durable orchestrations.\n\n"
    "Example: dtctl --hub ./orders.db list --status RUNNING --json",
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
            "--hub",
            envvar="DTCTL_HUB",
            help="Task hub: a SQLite file path, a postgresql:// URL, or @FILE holding one.",
            metavar="PATH|URL",
        ),
    ] = state.DEFAULT_HUB,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show tracebacks of internal errors.")
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    # --json / -o were recorded on state.current by their callbacks (dtctl/cli/options.py).
    state.current.hub = hub
    state.current.verbose = verbose


instances.register(app)
history_case.register()
history.register(app)
purge.register(app)
workers.register(app)
operate.register(app)
demo.register(app)
completion.register(app)
scale.register(app)
workersview.register(app)
top.register(app)
doctor.register(app)
dashboard.register(app)
serve.register(app)
repair.register(app)
metrics.register(app)
entity.register(app)


def run(argv: list[str] | None = None) -> int:
    """The console-script entry point; returns (and exits with) the documented exit code."""
    code = main(argv)
    sys.exit(code)


@functools.cache
def command() -> Any:
    """The click command tree typer builds from ``app`` (built once per process)."""
    return typer.main.get_command(app)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; every error ends here (the one boundary) as a message on stderr and an exit code."""
    words = sys.argv[1:] if argv is None else argv
    verbose = "-v" in words or "--verbose" in words
    try:
        result = command().main(args=words, prog_name="dtctl", standalone_mode=False)
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
        if verbose and exc.__cause__ is not None:  # e.g. the user's traceback behind an AppLoadError
            traceback.print_exception(exc.__cause__)
        render.error(exc.message, exc.hint)
        return exc.exit_code
    except KeyboardInterrupt:
        render.error("interrupted")
        return 130
    except BrokenPipeError:  # the reader went away (dtctl list | head): nothing left to say
        _silence_stdout()
        return ExitCode.OK
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


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # not a real file (tests)
        pass
