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
from dtctl.cli.options import usage_pieces

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
    ("9", "the disk holding the hub is full; nothing half-written was kept; retry once space is freed"),
    ("10", "the hub is read-only from here (read-only mount or file): reading commands work, writes cannot"),
]
ENVIRONMENT = [
    (
        "DTCTL_HUB",
        "the task hub (a SQLite file path, a postgresql:// URL, or @FILE holding one); the same as --hub; "
        "default ./taskhub.db",
    ),
    ("NO_COLOR", "when set, output carries no colour or other ANSI codes"),
    ("DTCTL_LOG_LEVEL", "worker log level (WARNING by default; INFO, DEBUG)"),
    (
        "OTEL_TRACES_EXPORTER, OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_SERVICE_NAME, OTEL_TRACES_SAMPLER",
        "the standard OpenTelemetry variables: workers export spans when they ask for it (dtctl[tracing])",
    ),
    (
        "DTCTL_OTEL_EXPORT",
        "inline: a traced worker exports its spans itself instead of through its exporter child process",
    ),
    (
        "TRACEPARENT",
        "a W3C trace context that start-instance, raise-event and entity signal store with what they send, "
        "so the workflow's spans join the caller's trace",
    ),
]
_INSTANCE = (
    "INSTANCE is an object with instance_id, execution_id, name, status, created_at, updated_at, "
    "completed_at, scheduled_start, input, output, custom_status, failure ({error_type, message, "
    "stack_trace} or null), parent_instance_id, lease_owner, lease_expires, history_length, "
    "previous_execution_id (the execution before a continue-as-new, or null)."
)
_EVENT = (
    "EVENT is an object with sequence, execution_id, timestamp, kind, and the fields of that kind "
    "(task_id, name, input, result, failure, fire_at, instance_id, reason, status, …)."
)
# The JSON each command prints with --json: part of the CLI contract, kept stable.
JSON_OUTPUT: dict[str, list[str]] = {
    "dtctl": [
        "With --json (or -o json), before or after the command name, a command prints only JSON on "
        "stdout; messages, warnings and errors go to stderr. Times are ISO-8601 UTC strings ending in Z "
        "(text output shows local time with the zone); payloads are JSON values; a missing value is null. "
        "Keys are only ever added, never renamed or removed.",
        _INSTANCE,
        _EVENT,
    ],
    "dtctl-start-instance": [
        '{"instance_id": ID, "created": true|false} (false: --if-exists skip found it); with --wait, '
        "the INSTANCE once it finished.",
        _INSTANCE,
    ],
    "dtctl-raise-event": ['{"instance_id": ID, "event": NAME, "raised": true}'],
    "dtctl-terminate": ['{"instance_id": ID, "terminated": true|false, "status": STATUS}'],
    "dtctl-suspend": ['{"instance_id": ID, "suspended": true}'],
    "dtctl-resume": ['{"instance_id": ID, "resumed": true}'],
    "dtctl-serve": [
        'One line once listening: {"listening": "grpc://HOST:PORT" (grpcs with TLS), "hub": HUB}.'
    ],
    "dtctl-status": [
        'The INSTANCE with "waiting_for": {start_at, episode ({worker, lease_expires} or null), '
        "activities [{task_id, name, state (queued|running|result_pending|unknown), scheduled_at, worker, "
        "lease_expires, visible_at, attempts}], timers [{task_id, fire_at, created_at, state "
        "(waiting|due)}], sub_orchestrations [{task_id, name, instance_id, status, state "
        "(running|result_pending), created_at}], new_events [{kind, name, task_id, due_at, visible, "
        "dequeue_count}], events_received [NAME], events_buffered [NAME], unclaimed {orchestrations "
        "[NAME], activities [NAME], live_workers}}. A finished instance waits for nothing (empty lists).",
        _INSTANCE,
    ],
    "dtctl-wait": ["The INSTANCE once it finished.", _INSTANCE],
    "dtctl-list": [
        '{"instances": [INSTANCE, …], "next_cursor": CURSOR|null}, newest first; input, output and '
        "custom_status are null in lists (dtctl status shows them).",
        _INSTANCE,
    ],
    "dtctl-history-show": [
        "[EVENT, …] in sequence order. With --follow, one EVENT per line (JSON Lines) as they are "
        'committed. With --timeline, {"instance_id", "execution_id", "name", "status", "start", "end", '
        '"duration_ms", "spans": [{kind (orchestration|queued|activity|timer|sub_orchestration|'
        "suspended|event), name, task_id, target, fire_at, start, end, duration_ms, outcome "
        "(completed|failed|fired|received|pending|unfinished|STATUS), failure}]}.",
        _EVENT,
    ],
    "dtctl-purge": [
        '{"dry_run": bool, "matched": N, "purged": N, "by_status": {STATUS: N}, "not_found": [ID], '
        '"not_finished": [ID]}'
    ],
    "dtctl-demo": ['{"instance": INSTANCE, "history": [EVENT, …]}', _INSTANCE, _EVENT],
    "dtctl-completion": ['{"shell": SHELL, "script": TEXT}'],
}


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


def synopsis(command: Any, ctx: Any) -> str:
    pieces = usage_pieces(command, ctx)
    return " ".join(pieces + (["COMMAND"] if _is_group(command) else []))


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
        escape(synopsis(command, ctx)),
    ]
    lines += _description(summary, paragraphs)
    lines += _commands(command)
    lines += _options(command, ctx, root)
    lines += _json_output(name)
    lines += _term_list("EXIT STATUS", EXIT_CODES)
    lines += _term_list("ENVIRONMENT", ENVIRONMENT)
    lines += _examples(examples)
    lines += [
        ".SH SEE ALSO",
        escape("dtctl(1)" if command is not root else "dtctl-worker(1), dtctl-start-instance(1)"),
    ]
    return "\n".join(lines) + "\n"


def _description(summary: str, paragraphs: list[str]) -> list[str]:
    if not (paragraphs or summary):
        return []
    lines = [".SH DESCRIPTION", escape(summary)]
    for paragraph in paragraphs:
        lines += [".PP", escape(paragraph)]
    return lines


def _commands(command: Any) -> list[str]:
    if not _is_group(command):
        return []
    lines = [".SH COMMANDS"]
    for sub_name in sorted(command.commands):
        sub = command.commands[sub_name]
        lines += [".TP", f".B {escape(sub_name)}", escape(sub.get_short_help_str(limit=200))]
    return lines


def _options(command: Any, ctx: Any, root: Any) -> list[str]:
    options = list(option_lines(command, ctx))
    lines = [".SH OPTIONS", *options] if options else []
    if command is not root:
        lines += [
            ".SH GLOBAL OPTIONS",
            escape("Given before the command name (--json and -o also after it):"),
            *list(option_lines(root, click.Context(root))),
        ]
    return lines


def _json_output(name: str) -> list[str]:
    if name not in JSON_OUTPUT:
        return []
    lines = [".SH JSON OUTPUT"]
    for n, paragraph in enumerate(JSON_OUTPUT[name]):
        lines += ([".PP"] if n else []) + [escape(paragraph)]
    return lines


def _term_list(section: str, terms: Any) -> list[str]:
    lines = [f".SH {section}"]
    for term, meaning in terms:
        lines += [".TP", f".B {term}", escape(meaning)]
    return lines


def _examples(examples: list[str]) -> list[str]:
    if not examples:
        return []
    lines = [".SH EXAMPLES"]
    for example in examples:
        lines += [".PP", ".nf", escape(example), ".fi"]
    return lines


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
