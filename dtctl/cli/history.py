"""``dtctl history show``: an instance's event history as a table, a timeline, a stream, or JSON."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated

import typer

from dtctl.cli import parse, render_history, state
from dtctl.errors import InstanceNotFound, UsageError

if TYPE_CHECKING:
    from dtctl.client import TaskHubClient
    from dtctl.hub.base import HistoryRecord

history_app = typer.Typer(help="Inspect instance histories.", no_args_is_help=True)


@history_app.command("show")
def show(
    instance_id: Annotated[
        str, typer.Argument(help="The instance id.", metavar="ID", callback=parse.instance_id)
    ],
    payloads: Annotated[
        bool, typer.Option("--payloads", help="Show payloads and stack traces in full.")
    ] = False,
    timeline: Annotated[
        bool,
        typer.Option("--timeline", help="Draw activities, timers and sub-orchestrations as bars over time."),
    ] = False,
    follow: Annotated[
        bool,
        typer.Option(
            "--follow", "-f", help="Keep printing new events as they are committed, until it finishes."
        ),
    ] = False,
    execution: Annotated[
        str | None,
        typer.Option(
            "--execution",
            help="An earlier execution id (the one before a continue-as-new), or `previous` for it; "
            "`dtctl status ID` shows it as `previous execution`.",
            metavar="EXECUTION_ID",
            callback=parse.optional_text,
        ),
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option("--limit", min=0, metavar="N", help="Show at most N events (a page; see --after)."),
    ] = None,
    after: Annotated[
        int | None,
        typer.Option(
            "--after",
            min=-1,
            metavar="SEQ",
            help="Show the events after sequence SEQ (the next page: the last SEQ shown).",
        ),
    ] = None,
) -> None:
    """Show the event history of an instance, oldest first.

    The table has one row per event: sequence, local time, kind, name (completions are named after what
    they complete), task id, and a short payload (failures in red with their message). --timeline
    draws each activity, timer and sub-orchestration as a bar from scheduled to completed, to show
    where the time went. --follow streams events as workers commit them and stops when the instance
    finishes (Ctrl-C stops it too, with exit 0); with --json it writes one JSON object per line.

    Events are printed as they are read, a page at a time, so a history of any length starts printing
    at once and needs little memory. --limit N shows N events and says on stderr how to read on;
    --after SEQ starts after sequence SEQ (with --follow too).

    An entity id (@name@key) has no event history (an entity keeps its state, not events): its state,
    lock holder and the messages waiting in its inbox are shown instead, as `dtctl entity show`.

    Example: dtctl history show order-1 --timeline
    """
    if instance_id.startswith("@"):
        _show_entity(instance_id, follow or timeline or execution is not None)
        return
    if follow and timeline:
        raise UsageError("--follow and --timeline cannot be combined; draw the timeline once it finishes")
    if timeline and (limit is not None or after is not None):
        raise UsageError("--timeline draws the whole execution; --limit and --after page the event list")
    if follow and limit is not None:
        raise UsageError("--follow runs until the instance finishes; --limit cannot be combined with it")
    client = state.current.client()
    as_json = state.current.json
    if execution == PREVIOUS:
        execution = _previous_execution(client, instance_id)
    if timeline:
        render_history.timeline(client.timeline(instance_id, execution), as_json=as_json)
        return
    if not follow:
        _show_page(client, instance_id, execution, after, limit, as_json=as_json, payloads=payloads)
        return
    client.iter_history(instance_id, execution, limit=0)  # unknown id or execution: exit 3 before streaming
    try:
        render_history.history_follow(
            client.follow_history(instance_id, execution, after=after), as_json=as_json, payloads=payloads
        )
    except KeyboardInterrupt:
        return  # Ctrl-C is how a user stops following: not an error


PREVIOUS = "previous"


def _show_entity(entity_id: str, history_options: bool) -> None:
    from dtctl.cli import entity

    if history_options:
        raise UsageError(
            f"{entity_id} is an entity: it has no event history to follow, draw or page",
            hint=f"dtctl entity show {entity_id}",
        )
    entity.show(entity_id)


def _show_page(
    client: TaskHubClient,
    instance_id: str,
    execution: str | None,
    after: int | None,
    limit: int | None,
    *,
    as_json: bool,
    payloads: bool,
) -> None:
    """Print the events as pages arrive; with --limit, one more is read to know whether more follow."""
    records = client.iter_history(
        instance_id, execution, after=after, limit=None if limit is None else limit + 1
    )
    last: list[int] = []  # the sequence of the last event shown, once one more turned up after it
    shown = itertools.islice(records, limit)
    render_history.history_table(_remember_last(shown, last), as_json=as_json, payloads=payloads)
    if limit is not None and next(records, None) is not None:
        render_history.more_events(last[0] if last else (-1 if after is None else after))


def _remember_last(records: Iterator[HistoryRecord], last: list[int]) -> Iterator[HistoryRecord]:
    for record in records:
        last[:] = [record.sequence]
        yield record


def _previous_execution(client: TaskHubClient, instance_id: str) -> str:
    """The id of the execution before the last continue-as-new; exit 3 when none is stored."""
    previous = client.get_instance_or_raise(instance_id).previous_execution_id
    if previous is None:
        raise InstanceNotFound(
            f"instance {instance_id!r} has no earlier execution stored in hub {client.hub.url}",
            hint="only the execution before the last continue-as-new is kept, and this instance never "
            "continued as new",
        )
    return previous


def register(app: typer.Typer) -> None:
    app.add_typer(history_app, name="history")
