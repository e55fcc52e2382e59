"""``dtctl entity list | show | signal | clean``: durable entities."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from dtctl.cli import parse, render_entities, state
from dtctl.errors import InstanceNotFound, UsageError
from dtctl.hub.base import EntityQuery

entity_app = typer.Typer(help="Durable entities: list, show, signal and clean.", no_args_is_help=True)

EntityIdArg = Annotated[
    str, typer.Argument(help="The entity id, written @name@key (name case-insensitive).", metavar="ID")
]


def _entity_id(value: str) -> str:
    from dtctl.core.entity_id import EntityInstanceId

    try:
        return str(EntityInstanceId.parse(value))
    except ValueError as exc:
        raise UsageError(str(exc)) from None


@entity_app.command("list")
def list_entities(
    name: Annotated[
        str | None, typer.Option("--name", help="Only entities of this name.", metavar="NAME")
    ] = None,
    prefix: Annotated[
        str | None, typer.Option("--prefix", help="Only ids starting with this (@counter@a).", metavar="P")
    ] = None,
    modified_after: Annotated[
        str | None,
        typer.Option("--modified-after", help="Last modified after this time or age (1h).", metavar="T"),
    ] = None,
    modified_before: Annotated[
        str | None,
        typer.Option("--modified-before", help="Last modified before this time or age.", metavar="T"),
    ] = None,
    no_state: Annotated[bool, typer.Option("--no-state", help="Leave the states out.")] = False,
    include_empty: Annotated[
        bool, typer.Option("--include-empty", help="Also entities with no state, lock or backlog.")
    ] = False,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Entities per page.")] = 100,
    cursor: Annotated[
        str | None, typer.Option("--cursor", help="Continue after the previous page.", metavar="C")
    ] = None,
) -> None:
    """List entities by id with their state, last modification, lock holder and backlog, a page at a time.

    Example: dtctl entity list --name counter --modified-after 1h
    """
    now = datetime.now(UTC)
    after = parse.past_point(modified_after, what="--modified-after", now=now) if modified_after else None
    before = parse.past_point(modified_before, what="--modified-before", now=now) if modified_before else None
    query = EntityQuery(
        name=name,
        prefix=prefix,
        modified_after=None if after is None else parse.micros(after),
        modified_before=None if before is None else parse.micros(before),
        include_state=not no_state,
        include_empty=include_empty,
        limit=limit,
        cursor=cursor,
    )
    client = state.current.client()
    render_entities.entity_list(client.query_entities(query), client.hub.now(), as_json=state.current.json)


@entity_app.command("show")
def show(entity_id: EntityIdArg) -> None:
    """One entity: its state, lock holder, lease and the messages waiting in its inbox.

    Exits 3 if no message was ever sent to it.

    Example: dtctl entity show @counter@c1
    """
    key = _entity_id(entity_id)
    details = state.current.client().entity_details(key)
    if details is None:
        raise InstanceNotFound(f"no entity {key!r} in hub {state.current.hub_shown}")
    render_entities.entity_detail(details, as_json=state.current.json)


@entity_app.command("signal")
def signal(
    entity_id: EntityIdArg,
    operation: Annotated[str, typer.Argument(help="The operation to run.", metavar="OP")],
    data: Annotated[
        str | None,
        typer.Option("--data", "-d", help="The operation's input as JSON, @file.json or -.", metavar="JSON"),
    ] = None,
    at: Annotated[
        str | None,
        typer.Option(
            "--at", help="Run it at this time (ISO, local if naive) or after this delay (10m).", metavar="T"
        ),
    ] = None,
) -> None:
    """Send a one-way operation to an entity (created by its first message); nobody waits for it.

    Example: dtctl entity signal @counter@c1 add --data 5
    """
    key = _entity_id(entity_id)
    operation = parse.name(operation)
    value = parse.json_argument(data, what="--data")
    when = parse.point_in_time(at, what="--at", now=datetime.now(UTC)) if at else None
    state.current.client().signal_entity(key, operation, value, signal_time=when)
    render_entities.signalled(key, operation, when, as_json=state.current.json)


@entity_app.command("clean")
def clean(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would be done; change nothing.")
    ] = False,
) -> None:
    """Release locks held by orchestrations that are gone or finished, and remove empty entities.

    An entity is empty when it has no state, no lock and nothing waiting in its inbox. A lock is
    orphaned when its holder was purged, terminated or failed before releasing it, or moved on to a
    new execution.

    Example: dtctl entity clean --dry-run
    """
    cleaned = state.current.client().clean_entity_storage(dry_run=dry_run)
    render_entities.cleaned(cleaned, dry_run=dry_run, as_json=state.current.json)


def register(app: typer.Typer) -> None:
    app.add_typer(entity_app, name="entity")
