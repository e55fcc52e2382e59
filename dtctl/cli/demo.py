"""``dtctl demo``: run hello-cities end to end on the hub and show what happened."""

from __future__ import annotations

import uuid
from typing import Annotated

import typer

from dtctl.cli import render, render_history, state
from dtctl.runtime.config import WorkerConfig


def demo(
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds to wait for the demo instance.")
    ] = 60.0,
) -> None:
    """Run the hello-cities demo: create the hub if needed, start an instance, run a worker, show history.

    With --json, prints one object: {"instance": …, "history": […]}.

    Example: dtctl demo
    """
    from dtctl.admin import open_hub
    from dtctl.client import TaskHubClient
    from dtctl.runtime.supervisor import Supervisor

    hub = open_hub(state.current.hub, create=True)
    client = TaskHubClient(hub)
    try:
        instance_id = f"demo-{uuid.uuid4().hex[:8]}"
        client.start_instance("hello_cities", instance_id=instance_id)
        render.message(
            f"started hello_cities as {instance_id}; running one worker process on {state.current.hub_shown}"
        )
        supervisor = Supervisor(
            WorkerConfig(hub=state.current.hub, app="dtctl.demo:app", burst=True), 1, notify=lambda _m: None
        )
        supervisor.run()
        final = client.wait_for_completion(instance_id, timeout=timeout)
        render_history.demo(final, client.get_history(instance_id), as_json=state.current.json)
    finally:
        client.close()


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
