"""``dtctl purge``: delete finished instances, in batches, resumably."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from dtctl.cli import parse, render, state
from dtctl.core.history import TERMINAL_STATUSES
from dtctl.errors import InstanceNotFound, InvalidState, UsageError


def purge(
    instance_ids: Annotated[
        list[str] | None,
        typer.Argument(help="Instances to purge (finished ones only).", metavar="ID"),
    ] = None,
    status_filter: Annotated[
        list[str] | None,
        typer.Option("--status", "-s", help="Only this finished status (repeatable).", metavar="STATUS"),
    ] = None,
    older_than: Annotated[
        str | None,
        typer.Option(
            "--older-than", help="Only instances that finished longer ago, e.g. 30d.", metavar="AGE"
        ),
    ] = None,
    created_before: Annotated[
        str | None,
        typer.Option(
            "--created-before",
            help="Only instances created before: ISO time or an age (30d).",
            metavar="TIME",
        ),
    ] = None,
    created_after: Annotated[
        str | None,
        typer.Option(
            "--created-after", help="Only instances created after: ISO time or an age (2h).", metavar="TIME"
        ),
    ] = None,
    no_recursive: Annotated[
        bool,
        typer.Option("--no-recursive", help="Leave the purged instances' sub-orchestrations in the hub."),
    ] = False,
    all_finished: Annotated[
        bool, typer.Option("--all", help="Every finished instance (when no ID or filter is given).")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would be purged; change nothing.")
    ] = False,
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, max=100_000, help="Instances per transaction.")
    ] = 500,
) -> None:
    """Delete finished instances (COMPLETED, FAILED, TERMINATED) with their history and queues.

    Select them by id, or by --status, --older-than (finish time), --created-before / --created-after
    (or --all). A purged instance's finished sub-orchestrations go with it, recursively, unless
    --no-recursive (counts are of the instances selected). Instances are deleted in batches,
    one transaction each: an interrupted purge leaves a consistent hub, and running it again carries
    on. A running instance is never purged. With ids, exits 3 if one does not exist and 4 if one has
    not finished (the others are purged). --dry-run counts and changes nothing.

    Example: dtctl purge --status COMPLETED --older-than 30d --dry-run
    """
    ids = [parse.checked_text(i, what="the instance id") for i in instance_ids or ()]
    statuses = tuple(s.upper() for s in status_filter or ())
    unknown = [s for s in statuses if s not in TERMINAL_STATUSES]
    if unknown:
        raise UsageError(
            f"only finished instances can be purged: {unknown[0]!r} is not one of "
            f"{', '.join(sorted(TERMINAL_STATUSES))}"
        )
    if not (ids or statuses or older_than or created_before or created_after or all_finished):
        raise UsageError(
            "say what to purge: instance ids, --status, --older-than, --created-before/-after, or --all",
            hint="dtctl purge --older-than 30d --dry-run counts what that would delete",
        )
    before = None
    if older_than:
        before = parse.micros(datetime.now(UTC) - parse.duration(older_than, what="--older-than"))
    now = datetime.now(UTC)
    created = {
        key: parse.micros(parse.past_point(text, what=flag, now=now))
        for key, flag, text in (
            ("created_before", "--created-before", created_before),
            ("created_after", "--created-after", created_after),
        )
        if text
    }
    client = state.current.client()
    selection: dict[str, Any] = {"statuses": statuses, "completed_before": before, **created}
    missing, live = client.unpurgeable(ids) if ids else ([], [])
    counts = client.count_purgeable(ids, **selection)
    matched = sum(counts.values())
    purged = 0
    if not dry_run and matched:
        with render.progress(matched, "purging", as_json=state.current.json) as bar:
            for deleted in client.purge_batches(
                ids, batch_size=batch_size, recursive=not no_recursive, **selection
            ):
                purged += deleted
                bar.advance(deleted)
    report = {
        "dry_run": dry_run,
        "matched": matched,
        "purged": purged,
        "by_status": counts,
        "not_found": missing,
        "not_finished": live,
    }
    render.purge_report(report, as_json=state.current.json)
    if missing:
        raise InstanceNotFound(f"no instance {', '.join(map(repr, missing))} in hub {client.hub.url}")
    if live:
        raise InvalidState(
            f"not finished, so not purged: {', '.join(map(repr, live))}",
            hint="terminate them first (dtctl terminate ID), or wait for them",
        )


def register(app: typer.Typer) -> None:
    app.command("purge")(purge)
