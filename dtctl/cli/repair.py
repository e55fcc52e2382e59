"""``dtctl rewind``, ``dtctl restart`` and ``dtctl replay-check``: repairing instances, checking a deploy."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dtctl.cli import parse, render_repair, state
from dtctl.core.history import ALL_STATUSES
from dtctl.errors import NonDeterminismError, UsageError

IdArg = Annotated[str, typer.Argument(help="The instance id.", metavar="ID", callback=parse.instance_id)]


def rewind(
    instance_id: IdArg,
    reason: Annotated[
        str | None,
        typer.Option("--reason", help="Why (recorded in history).", callback=parse.optional_text),
    ] = None,
) -> None:
    """Run a FAILED instance again from where it failed, keeping what succeeded.

    Its failed activities run again and its failed sub-orchestrations are rewound too (recursively);
    activities that completed are not run again. The failed execution stays readable as the previous
    one (history show ID --execution previous); the new one records the rewind. A worker carries it on.
    Exits 4 when the instance is not FAILED, 3 when it does not exist.

    Example: dtctl rewind order-1 --reason "payment service fixed"
    """
    rewound = state.current.client().rewind(instance_id, reason)
    extra = f" (and {len(rewound) - 1} failed sub-orchestration(s))" if len(rewound) > 1 else ""
    render_repair.done(
        {"instance_id": instance_id, "rewound": rewound},
        f"rewinding {instance_id}{extra}",
        state.current.json,
    )


def restart(
    instance_id: IdArg,
    new_id: Annotated[
        bool, typer.Option("--new-id", help="Start it under a new instance id (the old one stays).")
    ] = False,
) -> None:
    """Start a finished instance again from the beginning: same name, input and version.

    Without --new-id the finished instance is replaced (its history goes); with it a new instance is
    started and the id printed. A live instance is refused (exit 4): terminate it first.

    Example: dtctl restart order-1 --new-id
    """
    started = state.current.client().restart(instance_id, new_instance_id=new_id)
    text = f"restarted {instance_id}" + (f" as {started}" if started != instance_id else "")
    render_repair.done({"instance_id": instance_id, "started": started}, text, state.current.json)


def replay_check(
    app_spec: Annotated[
        str, typer.Argument(help="The app: module:attr or path/to/file.py:attr.", metavar="APP")
    ],
    name: Annotated[
        str | None,
        typer.Option("--name", help="Only instances of this orchestration.", callback=parse.optional_text),
    ] = None,
    status_filter: Annotated[
        list[str] | None,
        typer.Option("--status", "-s", help="Only this status (repeatable).", metavar="STATUS"),
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Check at most this many instances.")
    ] = None,
    since: Annotated[
        str,
        typer.Option(
            "--since", help="Finished instances created within this age are checked.", metavar="AGE"
        ),
    ] = "1d",
    from_file: Annotated[
        Path | None,
        typer.Option(
            "--from-file", help="Replay an exported case file (dtctl history export) instead.", metavar="FILE"
        ),
    ] = None,
) -> None:
    """Replay stored histories against the app's current code; exit 4 if any would fail.

    Reads the live instances (PENDING, RUNNING, SUSPENDED) and the finished ones created within --since
    (or exactly the --status ones), streams each history, and replays it in this process: nothing is
    written and no activity runs. Every instance whose replay would raise NonDeterminismError is listed
    with the task id where history and code part, what history recorded and what the code does now.
    Exit codes: 0 all replay, 4 some would fail, 2 bad usage. Instances of orchestrations the app does
    not register are counted, not replayed.

    Example: dtctl replay-check myapp:app --status RUNNING --json
    """
    from dtctl import casefile, replaycheck
    from dtctl.runtime.loader import load_app

    app = load_app(app_spec)
    if from_file is not None:
        report = replaycheck.check_case(app, casefile.read_case(from_file))
    else:
        statuses = tuple(s.upper() for s in status_filter or ())
        unknown = [s for s in statuses if s not in ALL_STATUSES]
        if unknown:
            raise UsageError(f"unknown status {unknown[0]!r}; use one of {', '.join(ALL_STATUSES)}")
        recent = parse.duration(since, what="--since").total_seconds()
        selection = replaycheck.Selection(name=name, statuses=statuses, limit=limit, recent_seconds=recent)
        report = replaycheck.check_hub(state.current.client().hub, app, selection)
    render_repair.replay_report(report, as_json=state.current.json)
    if report.broken:
        raise NonDeterminismError(
            f"{len(report.broken)} of {report.checked} instance(s) would fail to replay with this code",
            hint="keep the old code path for them (see 'Changing orchestration code safely' in the README)",
        )


def register(app: typer.Typer) -> None:
    app.command("rewind")(rewind)
    app.command("restart")(restart)
    app.command("replay-check")(replay_check)
