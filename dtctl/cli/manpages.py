"""Man pages generated from the click command tree that typer builds.

typer has no man generator of its own. This walks the tree and writes ``dtctl.1`` plus one page per
command (``dtctl-start-instance.1``, ``dtctl-history-show.1``, …). Output is deterministic (no dates),
so ``tests/cli/test_manpages.py`` can regenerate and compare.

Regenerate with ``python -m dtctl.cli.manpages man/``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer.main

from dtctl import __version__
from dtctl.cli.clicks import click

EXIT_CODES = [
    ("0", "success"),
    ("1", "internal error (a bug; run with -v for the traceback)"),
    ("2", "usage error: bad option, malformed JSON, an app that does not import"),
    ("3", "not found: no such instance, no hub at that path"),
    ("4", "conflict or invalid state: the id exists, the instance has finished, a payload was refused"),
    ("5", "--wait saw the instance end FAILED or TERMINATED"),
    ("6", "timed out, or the hub stayed busy past the busy timeout"),
    ("7", "the hub's schema version does not match this dtctl (dtctl hub migrate)"),
    ("8", "the hub is unsafe or corrupt: not a database, on a network file system, a directory"),
]
ENVIRONMENT = [
    ("DTCTL_HUB", "the task hub (a SQLite file path); the same as --hub; default ./taskhub.db"),
    ("NO_COLOR", "when set, output carries no colour or other ANSI codes"),
    ("DTCTL_LOG_LEVEL", "worker log level (WARNING by default; INFO, DEBUG)"),
]


def escape(text: str) -> str:
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join(("\\&" + line) if line.startswith((".", "'")) else line for line in text.split("\n"))


def walk(command: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any]]:
    yield path, command
    if _is_group(command):
        for name in sorted(command.commands):
            sub = command.commands[name]
            if not sub.hidden:
                yield from walk(sub, (*path, name))


def _is_group(command: Any) -> bool:
    return isinstance(getattr(command, "commands", None), dict)


def split_help(text: str) -> tuple[str, list[str], list[str]]:
    """(summary, description paragraphs, example lines) from a command's docstring."""
    lines = [line.strip() for line in (text or "").strip().splitlines()]
    examples = [line.removeprefix("Example:").strip() for line in lines if line.startswith("Example:")]
    body = [line for line in lines if not line.startswith("Example:")]
    paragraphs: list[str] = []
    current: list[str] = []
    for line in body:
        if line:
            current.append(line)
        elif current:
            paragraphs.append(" ".join(current))
            current = []
    if current:
        paragraphs.append(" ".join(current))
    summary = paragraphs[0] if paragraphs else ""
    return summary, paragraphs[1:], examples


def option_lines(command: Any, ctx: Any) -> Iterator[str]:
    for param in command.get_params(ctx):
        record = param.get_help_record(ctx)
        if record is None:
            continue
        names, help_text = record
        yield ".TP"
        yield f".B {escape(names)}"
        yield escape(help_text or "")


def argument_names(command: Any) -> list[str]:
    return [p.metavar or (p.name or "").upper() for p in command.params if p.param_type_name == "argument"]


def render_page(path: tuple[str, ...], command: Any, root: Any) -> str:
    name = "-".join(path)
    ctx = click.Context(command, info_name=" ".join(path))
    summary, paragraphs, examples = split_help(command.help or "")
    lines = [
        f'.TH "{name.upper()}" "1" "" "dtctl {__version__}" "dtctl manual"',
        ".SH NAME",
        f"{escape(name)} \\- {escape(summary)}",
        ".SH SYNOPSIS",
        f".B {escape(' '.join(path))}",
        escape(
            " ".join(["[OPTIONS]", *argument_names(command)] + (["COMMAND"] if _is_group(command) else []))
        ),
    ]
    if paragraphs or summary:
        lines += [".SH DESCRIPTION", escape(summary)]
        for paragraph in paragraphs:
            lines += [".PP", escape(paragraph)]
    if _is_group(command):
        lines.append(".SH COMMANDS")
        for sub_name in sorted(command.commands):
            sub = command.commands[sub_name]
            lines += [".TP", f".B {escape(sub_name)}", escape(sub.get_short_help_str(limit=200))]
    options = list(option_lines(command, ctx))
    if options:
        lines += [".SH OPTIONS", *options]
    if command is not root:
        lines += [
            ".SH GLOBAL OPTIONS",
            "Given before the command: ",
            *list(option_lines(root, click.Context(root))),
        ]
    lines.append(".SH EXIT STATUS")
    for code, meaning in EXIT_CODES:
        lines += [".TP", f".B {code}", escape(meaning)]
    lines.append(".SH ENVIRONMENT")
    for variable, meaning in ENVIRONMENT:
        lines += [".TP", f".B {variable}", escape(meaning)]
    if examples:
        lines.append(".SH EXAMPLES")
        for example in examples:
            lines += [".PP", ".nf", escape(example), ".fi"]
    lines += [
        ".SH SEE ALSO",
        escape("dtctl(1)" if command is not root else "dtctl-worker(1), dtctl-start-instance(1)"),
    ]
    return "\n".join(lines) + "\n"


def generate() -> dict[str, str]:
    from dtctl.cli.main import app

    root = typer.main.get_command(app)
    return {
        f"{'-'.join(path)}.1": render_page(path, command, root) for path, command in walk(root, ("dtctl",))
    }


def write(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    pages = generate()
    for stale in directory.glob("dtctl*.1"):
        if stale.name not in pages:
            stale.unlink()
    written = []
    for filename, text in pages.items():
        target = directory / filename
        target.write_text(text, encoding="utf-8")
        written.append(target)
    return written


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "man")
    for page in write(out):
        print(page)
