"""``dtctl completion SHELL``: print the shell completion script.

``dtctl --install-completion`` (typer's) installs it for the shell it detects; detection fails in
containers and CI, so this command prints the script for a shell named explicitly.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from dtctl.cli import render, state
from dtctl.errors import UsageError

SHELLS = ("bash", "zsh", "fish", "powershell", "pwsh")
COMPLETE_VAR = "_DTCTL_COMPLETE"


def completion(
    shell: Annotated[
        str | None,
        typer.Argument(help="bash, zsh, fish, powershell or pwsh (default: from $SHELL).", metavar="SHELL"),
    ] = None,
) -> None:
    """Print the shell completion script for dtctl.

    Load it in the current shell, or save it where your shell reads completions. (dtctl
    --install-completion does the saving for the shell it detects.)

    Example: source <(dtctl completion bash)
    """
    chosen = shell or Path(os.environ.get("SHELL", "")).name
    if chosen not in SHELLS:
        given = f"shell {chosen!r} is not supported" if chosen else "no shell given and $SHELL is not set"
        raise UsageError(f"{given}; use one of {', '.join(SHELLS)}")
    from typer._completion_shared import get_completion_script

    script = get_completion_script(prog_name="dtctl", complete_var=COMPLETE_VAR, shell=chosen)
    render.completion_script(chosen, script, as_json=state.current.json)


def register(app: typer.Typer) -> None:
    app.command("completion")(completion)
