"""Commands on instances: start, raise events, terminate, suspend/resume, status, wait, list."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, cast

import typer

from dtctl.cli import parse, render, render_status, state
from dtctl.core import names
from dtctl.core.history import ALL_STATUSES, FAILED, TERMINATED
from dtctl.core.tags import check_version, parse_tags
from dtctl.errors import InstanceFailed, InvalidState, UsageError
from dtctl.hub.base import IfExists, InstanceQuery, InstanceState

IdArg = Annotated[str, typer.Argument(help="The instance id.", metavar="ID", callback=parse.instance_id)]
ReasonOpt = Annotated[
    str | None,
    typer.Option("--reason", help="Why (recorded in history).", callback=parse.optional_text),
]
IF_EXISTS = ("fail", "skip", "replace")
TagOpt = Annotated[
    list[str] | None,
    typer.Option("--tag", "-t", help="A tag NAME=VALUE (repeatable).", metavar="NAME=VALUE"),
]
UrlOpt = Annotated[
    str | None,
    typer.Option(
        "--url",
        help="Dashboard base URL for links (default: the dashboard running on this hub, if any).",
        metavar="BASE",
        callback=parse.optional_text,
    ),
]


def _dashboard_base(url: str | None) -> str | None:
    """--url, else the base URL a running ``dtctl dashboard`` of this hub registered (or none)."""
    from dtctl.dashboard import registry

    if url:
        return url.rstrip("/")
    hub = state.current.client().hub
    return registry.running_dashboard(registry.registration_path(hub.watch_path(), hub.url))


def _new_id(value: str | None) -> str | None:
    """typer callback for ``--id``: the rules of a new instance id (exit 2 before anything is stored)."""
    return None if value is None else names.new_instance_id(parse.checked_text(value, what="the instance id"))


def _now() -> datetime:
    return datetime.now(UTC)


def start_instance(
    name: Annotated[str, typer.Argument(help="The orchestrator name.", metavar="NAME", callback=parse.name)],
    input: Annotated[
        str | None,
        typer.Option("--input", "-i", help="Input as JSON, @file.json, or - for stdin.", metavar="JSON"),
    ] = None,
    instance_id: Annotated[
        str | None,
        typer.Option(
            "--id",
            help="Instance id (default: a new uuid): at most 256 characters, no control characters, "
            "no / \\ # ?, not starting with @.",
            callback=_new_id,
        ),
    ] = None,
    start_at: Annotated[
        str | None,
        typer.Option("--start-at", help="Start later: an ISO time or a delay such as 10m.", metavar="TIME"),
    ] = None,
    if_exists: Annotated[
        str,
        typer.Option("--if-exists", help="When the id exists: fail, skip, or replace (a finished one only)."),
    ] = "fail",
    version: Annotated[
        str | None,
        typer.Option(
            "--version",
            help="The orchestration version (ctx.version); workers may match it (dtctl worker --version).",
            metavar="V",
        ),
    ] = None,
    tag: TagOpt = None,
    strict: Annotated[
        bool,
        typer.Option("--strict", help="Refuse (exit 4) if no live worker has registered NAME."),
    ] = False,
    wait: Annotated[
        bool, typer.Option("--wait", help="Wait for the instance to finish and print its output.")
    ] = False,
    timeout: Annotated[
        float | None, typer.Option("--timeout", min=0, help="Seconds to wait with --wait.", metavar="S")
    ] = None,
) -> None:
    """Schedule a new orchestration instance and print its id.

    Warns (on stderr) when no live worker has registered NAME: the instance is scheduled anyway and
    runs once such a worker starts; --strict refuses instead and schedules nothing. With --wait, prints
    the instance's output (JSON) when it finishes and exits 5 if it ended FAILED or TERMINATED, 6 if
    --timeout passed first. --version runs it at an orchestration version (workers with a version
    match strategy take only the versions they match); --tag labels it for dtctl list --tag.

    Example: dtctl start-instance hello_cities --input '"Tokyo"' --id demo --wait --timeout 30

    Example: dtctl start-instance process_order --version 2.0 --tag tenant=acme --tag region=eu
    """
    if if_exists not in IF_EXISTS:
        raise UsageError(f"--if-exists must be fail, skip or replace, not {if_exists!r}")
    value = parse.json_argument(input, what="--input")
    when = parse.point_in_time(start_at, what="--start-at", now=_now()) if start_at else None
    client = state.current.client()
    unclaimed = client.unclaimed_names([name])
    if unclaimed and strict:
        raise InvalidState(
            f"no live worker has registered orchestrator {name!r}; nothing was scheduled (--strict)",
            hint="start a worker whose app registers it: dtctl worker APP",
        )
    outcome = client.create_instance(
        name,
        input=value,
        instance_id=instance_id,
        start_at=when,
        if_exists=cast(IfExists, if_exists),
        version=check_version(version),
        tags=parse_tags(tag or ()),
    )
    if unclaimed:
        who = "no worker is running" if unclaimed.live_workers == 0 else "its live workers do not know it"
        render.warning(
            f"no live worker has registered orchestrator {name!r} on this hub ({who}); "
            f"{outcome.instance_id} waits until one does",
            hint="start a worker whose app registers it: dtctl worker APP (or use --strict to refuse)",
        )
    if not wait:
        render.created(outcome, as_json=state.current.json)
        return
    _wait_and_show(outcome.instance_id, timeout)


def _wait_and_show(instance_id: str, timeout: float | None) -> None:
    final = state.current.client().wait_for_completion(instance_id, timeout=timeout)
    render.instance_result(final, as_json=state.current.json)
    _fail_unless_completed(final)


def _fail_unless_completed(final: InstanceState) -> None:
    if final.status == FAILED:
        why = f": {final.failure.error_type}: {final.failure.message}" if final.failure else ""
        raise InstanceFailed(
            f"instance {final.instance_id!r} ended FAILED{why}",
            hint=f"dtctl history show {final.instance_id} shows where",
        )
    if final.status == TERMINATED:
        why = f" ({final.output})" if final.output else ""
        raise InstanceFailed(f"instance {final.instance_id!r} was TERMINATED{why}")


def raise_event(
    instance_id: IdArg,
    name: Annotated[
        str, typer.Argument(help="The event name (case-insensitive).", metavar="NAME", callback=parse.name)
    ],
    data: Annotated[
        str | None,
        typer.Option("--data", "-d", help="Event data as JSON, @file.json or -.", metavar="JSON"),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Store the event even if the instance finished.")
    ] = False,
) -> None:
    """Deliver an external event to an instance; it is queued until the orchestrator waits for it.

    Exits 3 if there is no such instance, 4 if it has finished (unless --force).

    Example: dtctl raise-event req-1 approval --data '{"approved": true}'
    """
    value = parse.json_argument(data, what="--data")
    state.current.client().raise_event(instance_id, name, value, force=force)
    render.done(
        {"instance_id": instance_id, "event": name, "raised": True},
        f"raised {name!r} on {instance_id}",
        as_json=state.current.json,
    )


def terminate(
    instance_id: IdArg,
    reason: Annotated[
        str | None,
        typer.Option("--reason", help="Why; stored as the output.", callback=parse.optional_text),
    ] = None,
    no_recursive: Annotated[
        bool, typer.Option("--no-recursive", help="Leave running sub-orchestrations alone.")
    ] = False,
) -> None:
    """Terminate an instance (and its running sub-orchestrations).

    A running instance becomes TERMINATED at its next episode (a pending one at once). Terminating an
    instance that already finished changes nothing and exits 0.

    Example: dtctl terminate order-1 --reason "customer cancelled"
    """
    outcome = state.current.client().terminate(instance_id, reason, recursive=not no_recursive)
    text = (
        f"terminating {instance_id}"
        if outcome.terminated
        else f"{instance_id} already {outcome.status}; nothing to terminate"
    )
    render.done(
        {"instance_id": instance_id, "terminated": outcome.terminated, "status": outcome.status},
        text,
        as_json=state.current.json,
    )


def suspend(instance_id: IdArg, reason: ReasonOpt = None) -> None:
    """Suspend a running instance: new events are held until it is resumed.

    Exits 4 if the instance has finished.

    Example: dtctl suspend order-1 --reason "waiting for stock audit"
    """
    state.current.client().suspend(instance_id, reason)
    render.done(
        {"instance_id": instance_id, "suspended": True},
        f"suspending {instance_id}",
        as_json=state.current.json,
    )


def resume(instance_id: IdArg, reason: ReasonOpt = None) -> None:
    """Resume a suspended instance.

    Example: dtctl resume order-1
    """
    state.current.client().resume(instance_id, reason)
    render.done(
        {"instance_id": instance_id, "resumed": True}, f"resuming {instance_id}", as_json=state.current.json
    )


def status(
    instance_id: IdArg,
    full: Annotated[bool, typer.Option("--full", help="Show payloads and stack traces in full.")] = False,
    url: UrlOpt = None,
) -> None:
    """Show one instance and what it is waiting for now.

    Status, times, input/output/custom status (truncated unless --full), failure details, the worker
    holding its lease, and what it waits for: activities (queued, or running on which worker), timers
    with their due time, running sub-orchestrations, events not processed yet, and names that no live
    worker has registered (the usual reason an instance looks stuck). When a dtctl dashboard runs on
    this hub (or with --url), also the instance's dashboard page (dashboard_url in JSON).

    Example: dtctl status order-1 --json
    """
    from dtctl.dashboard import registry

    client = state.current.client()
    found = client.get_instance_or_raise(instance_id)
    base = _dashboard_base(url)
    render_status.status(
        found,
        client.waiting_for(instance_id),
        as_json=state.current.json,
        full=full,
        dashboard_url=registry.instance_url(base, instance_id) if base else None,
    )


def wait(
    instance_id: IdArg,
    timeout: Annotated[
        float | None,
        typer.Option("--timeout", min=0, help="Seconds to wait (default: forever).", metavar="S"),
    ] = None,
) -> None:
    """Wait for an instance to finish and print its output (JSON).

    Exits 5 if it ended FAILED or TERMINATED, 6 if --timeout passed first.

    Example: dtctl wait order-1 --timeout 30
    """
    _wait_and_show(instance_id, timeout)


def list_instances(
    status_filter: Annotated[
        list[str] | None,
        typer.Option("--status", "-s", help="Only this status (repeatable).", metavar="STATUS"),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option("--name", help="Only this orchestrator name.", callback=parse.optional_text),
    ] = None,
    prefix: Annotated[
        str | None,
        typer.Option("--prefix", help="Only ids starting with this.", callback=parse.optional_text),
    ] = None,
    created_after: Annotated[
        str | None,
        typer.Option("--created-after", help="ISO time, or an age such as 2h.", metavar="TIME"),
    ] = None,
    created_before: Annotated[
        str | None,
        typer.Option("--created-before", help="ISO time, or an age such as 2h.", metavar="TIME"),
    ] = None,
    version: Annotated[
        str | None,
        typer.Option("--version", help="Only this orchestration version ('' : none).", metavar="V"),
    ] = None,
    tag: TagOpt = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10000, help="Page size.")] = 50,
    cursor: Annotated[
        str | None,
        typer.Option(
            "--cursor",
            help="Continue after the previous page (its next_cursor).",
            callback=parse.optional_text,
        ),
    ] = None,
    url: UrlOpt = None,
) -> None:
    """List instances, newest first, one page at a time.

    When more instances match, the next page's cursor is printed on stderr (next_cursor in JSON).
    Ready work whose names no live worker registered is pointed out on stderr too. When a dtctl
    dashboard runs on this hub (or with --url), each instance's dashboard page is listed as well.

    --version and --tag (repeatable; all must match) filter on the instance's version and tags.

    Example: dtctl list --status RUNNING --status PENDING --limit 20

    Example: dtctl list --version 1.0 --tag tenant=acme
    """
    statuses = tuple(s.upper() for s in status_filter or ())
    unknown = [s for s in statuses if s not in ALL_STATUSES]
    if unknown:
        raise UsageError(f"unknown status {unknown[0]!r}; use one of {', '.join(ALL_STATUSES)}")
    now = _now()
    after = parse.past_point(created_after, what="--created-after", now=now) if created_after else None
    before = parse.past_point(created_before, what="--created-before", now=now) if created_before else None
    query = InstanceQuery(
        statuses=statuses,
        name=name,
        prefix=prefix,
        created_after=None if after is None else parse.micros(after),
        created_before=None if before is None else parse.micros(before),
        limit=limit,
        cursor=cursor,
        version=version,
        tags=tuple((parse_tags(tag or ()) or {}).items()),
    )
    from dtctl.dashboard import registry

    base = _dashboard_base(url)
    render.instance_list(
        state.current.client().list_instances(query),
        as_json=state.current.json,
        link=(lambda instance_id: registry.instance_url(base, instance_id)) if base else None,
    )
    from dtctl.cli import workersview  # the note on ready work no live worker can take (stderr)

    workersview.note_unclaimable(state.current.client().hub)


def register(app: typer.Typer) -> None:
    app.command("start-instance")(start_instance)
    app.command("raise-event")(raise_event)
    app.command("terminate")(terminate)
    app.command("suspend")(suspend)
    app.command("resume")(resume)
    app.command("status")(status)
    app.command("wait")(wait)
    app.command("list")(list_instances)
