"""Commands on instances: start, raise events, terminate, suspend/resume, status, wait, list."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, cast

import typer

from dtctl.cli import parse, render, state
from dtctl.core.history import ALL_STATUSES, FAILED, TERMINATED
from dtctl.errors import InstanceFailed, UsageError
from dtctl.hub.base import IfExists, InstanceQuery

IdArg = Annotated[str, typer.Argument(help="The instance id.", metavar="ID")]


def _now() -> datetime:
    return datetime.now(UTC)


def start_instance(
    name: Annotated[str, typer.Argument(help="The orchestrator name.", metavar="NAME")],
    input: Annotated[
        str | None, typer.Option("--input", "-i", help="Input as JSON, @file.json, or - for stdin.")
    ] = None,
    instance_id: Annotated[
        str | None, typer.Option("--id", help="Instance id (default: a new uuid).")
    ] = None,
    start_at: Annotated[
        str | None, typer.Option("--start-at", help="Start later: ISO time or a delay such as 10m.")
    ] = None,
    if_exists: Annotated[
        str, typer.Option("--if-exists", help="When the id exists: fail, skip, or replace (terminal only).")
    ] = "fail",
    wait: Annotated[
        bool, typer.Option("--wait", help="Wait for the instance to finish; print its output.")
    ] = False,
    timeout: Annotated[float | None, typer.Option("--timeout", help="Seconds to wait with --wait.")] = None,
) -> None:
    """Schedule a new orchestration instance and print its id.

    Example: dtctl start-instance hello_cities --input '"Tokyo"' --id demo --wait
    """
    if if_exists not in ("fail", "skip", "replace"):
        raise UsageError(f"--if-exists must be fail, skip or replace, not {if_exists!r}")
    policy = cast(IfExists, if_exists)
    value = parse.json_argument(input, what="--input")
    when = parse.point_in_time(start_at, what="--start-at", now=_now()) if start_at else None
    client = state.current.client()
    new_id = client.start_instance(
        name, input=value, instance_id=instance_id, start_at=when, if_exists=policy
    )
    if not wait:
        render.instance_ids([new_id], as_json=state.current.json)
        return
    _wait_and_show(new_id, timeout)


def _wait_and_show(instance_id: str, timeout: float | None) -> None:
    final = state.current.client().wait_for_completion(instance_id, timeout=timeout)
    render.instance_detail(final, as_json=state.current.json)
    if final.status in (FAILED, TERMINATED):
        raise InstanceFailed(f"instance {instance_id!r} ended {final.status}")


def raise_event(
    instance_id: IdArg,
    name: Annotated[str, typer.Argument(help="The event name (case-insensitive).", metavar="NAME")],
    data: Annotated[
        str | None, typer.Option("--data", "-d", help="Event data as JSON, @file.json or -.")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Store the event even if the instance finished.")
    ] = False,
) -> None:
    """Deliver an external event to a running instance.

    Example: dtctl raise-event req-1 approval --data '{"approved": true}'
    """
    value = parse.json_argument(data, what="--data")
    state.current.client().raise_event(instance_id, name, value, force=force)
    _done({"instance_id": instance_id, "event": name, "raised": True}, f"raised {name!r} on {instance_id}")


def terminate(
    instance_id: IdArg,
    reason: Annotated[str | None, typer.Option("--reason", help="Why; stored as the output.")] = None,
    no_recursive: Annotated[
        bool, typer.Option("--no-recursive", help="Leave running sub-orchestrations alone.")
    ] = False,
) -> None:
    """Terminate an instance (and its running sub-orchestrations).

    Terminating an instance that already finished changes nothing and exits 0.

    Example: dtctl terminate order-1 --reason "customer cancelled"
    """
    outcome = state.current.client().terminate(instance_id, reason, recursive=not no_recursive)
    text = (
        f"terminating {instance_id}"
        if outcome.terminated
        else f"{instance_id} already {outcome.status}; nothing to terminate"
    )
    _done({"instance_id": instance_id, "terminated": outcome.terminated, "status": outcome.status}, text)


def suspend(
    instance_id: IdArg,
    reason: Annotated[str | None, typer.Option("--reason", help="Why (recorded in history).")] = None,
) -> None:
    """Suspend a running instance: new events are held until it is resumed.

    Example: dtctl suspend order-1 --reason "waiting for stock audit"
    """
    state.current.client().suspend(instance_id, reason)
    _done({"instance_id": instance_id, "suspended": True}, f"suspending {instance_id}")


def resume(
    instance_id: IdArg,
    reason: Annotated[str | None, typer.Option("--reason", help="Why (recorded in history).")] = None,
) -> None:
    """Resume a suspended instance.

    Example: dtctl resume order-1
    """
    state.current.client().resume(instance_id, reason)
    _done({"instance_id": instance_id, "resumed": True}, f"resuming {instance_id}")


def status(
    instance_id: IdArg,
    full: Annotated[bool, typer.Option("--full", help="Show payloads untruncated.")] = False,
) -> None:
    """Show one instance: status, times, input/output, custom status, failure, lease.

    Example: dtctl status order-1 --json
    """
    found = state.current.client().get_instance_or_raise(instance_id)
    render.instance_detail(found, as_json=state.current.json, full=full)


def wait(
    instance_id: IdArg,
    timeout: Annotated[
        float | None, typer.Option("--timeout", help="Seconds to wait (default: forever).")
    ] = None,
) -> None:
    """Wait for an instance to finish and show it; exits 5 if it FAILED or was TERMINATED, 6 on timeout.

    Example: dtctl wait order-1 --timeout 30
    """
    _wait_and_show(instance_id, timeout)


def list_instances(
    status_filter: Annotated[
        list[str] | None, typer.Option("--status", "-s", help="Only this status (repeatable).")
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="Only this orchestrator name.")] = None,
    prefix: Annotated[str | None, typer.Option("--prefix", help="Only ids starting with this.")] = None,
    created_after: Annotated[
        str | None, typer.Option("--created-after", help="ISO time or an age such as 2h.")
    ] = None,
    created_before: Annotated[
        str | None, typer.Option("--created-before", help="ISO time or an age such as 2h.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10000, help="Page size.")] = 50,
    cursor: Annotated[str | None, typer.Option("--cursor", help="Continue after the previous page.")] = None,
) -> None:
    """List instances, newest first, one page at a time.

    Example: dtctl list --status RUNNING --status PENDING --limit 20
    """
    statuses = tuple(s.upper() for s in status_filter or ())
    unknown = [s for s in statuses if s not in ALL_STATUSES]
    if unknown:
        raise UsageError(f"unknown status {unknown[0]!r}; use one of {', '.join(ALL_STATUSES)}")
    now = _now()
    query = InstanceQuery(
        statuses=statuses,
        name=name,
        prefix=prefix,
        created_after=_us(parse.past_point(created_after, what="--created-after", now=now))
        if created_after
        else None,
        created_before=_us(parse.past_point(created_before, what="--created-before", now=now))
        if created_before
        else None,
        limit=limit,
        cursor=cursor,
    )
    render.instance_list(state.current.client().list_instances(query), as_json=state.current.json)


def _us(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000)


def _done(data: dict[str, object], text: str) -> None:
    if state.current.json:
        render.emit_json(data)
    else:
        render.message(text)


def register(app: typer.Typer) -> None:
    app.command("start-instance")(start_instance)
    app.command("raise-event")(raise_event)
    app.command("terminate")(terminate)
    app.command("suspend")(suspend)
    app.command("resume")(resume)
    app.command("status")(status)
    app.command("wait")(wait)
    app.command("list")(list_instances)
