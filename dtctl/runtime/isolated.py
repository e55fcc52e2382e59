"""The child process of an isolated run: one suspect work item, alone (see ``isolation``).

Run as ``python -m dtctl.runtime.isolated`` with a pickled ``IsolatedRequest`` on stdin. It reports on
stdout, one word a line: ``start`` when the item's own code (an activity, an episode, or a suspect
entity's batch) is about to run, ``beat`` while an activity runs, and ``done`` (committed, refused,
or abandoned after an exception) or ``infra`` (the hub could not be reached: nothing to hold against
the item) just before exiting 0. Dying any other way is what the worker charges to the item.
"""

from __future__ import annotations

import ctypes
import logging
import os
import pickle
import signal
import sys
import threading
import time
from dataclasses import replace

from dtctl.core.app import App
from dtctl.errors import DtctlError, ExitCode
from dtctl.faults import fault_point
from dtctl.hub import open_hub
from dtctl.hub.base import ActivityResult, ActivityWorkItem, EntityWorkItem, OrchestrationWorkItem, TaskHub
from dtctl.observe import NOOP, Commit, Observer, build_observer
from dtctl.observe.logs import configure_logging
from dtctl.runtime.dispatcher import EpisodeRunner, execute_activity
from dtctl.runtime.entities import execute_batch
from dtctl.runtime.isolation import BEAT_SECONDS, IsolatedRequest
from dtctl.runtime.loader import load_app

log = logging.getLogger("dtctl.worker")

PR_SET_PDEATHSIG = 1


def _report(word: str) -> None:
    os.write(sys.stdout.fileno(), f"{word}\n".encode())


def _die_with(parent_pid: int) -> None:
    """A child must not outlive the worker that watches it (a runaway nobody would ever stop)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:  # the worker died before the line above took effect
        os._exit(ExitCode.INTERNAL)


def run_activity(app: App, hub: TaskHub, item: ActivityWorkItem, observer: Observer = NOOP) -> None:
    definition = app.get_activity(item.name)
    if definition is None:
        raise LookupError(f"activity {item.name!r} is not registered in this worker")
    results: list[ActivityResult] = []
    observer.activities_leased([item], hub.now())

    def run() -> None:
        results.append(observer.run_activity(item, lambda: execute_activity(app, definition, item)))

    runner = threading.Thread(target=run, name="dtctl-activity")
    _report("start")
    runner.start()
    # The main thread says "still alive" while the body runs: silence means the process is stuck
    # (a body holding the GIL in native code), which is what the stall timeout bounds.
    while runner.is_alive():
        runner.join(BEAT_SECONDS)
        _report("beat")
    fault_point("activity.ran")
    (accepted,) = hub.complete_activities(results)
    observer.committed(Commit(0.0, True, (), (), results, (accepted,)))
    if not accepted:
        log.warning("result of isolated activity %s was refused: its lease was lost", item.name)


def run_episode(
    app: App,
    hub: TaskHub,
    item: OrchestrationWorkItem,
    default_version: str | None = None,
    observer: Observer = NOOP,
) -> None:
    runner = EpisodeRunner(app, hub, default_version=default_version)
    observer.orchestrations_leased([item], hub.now())
    _report("start")
    try:
        started = time.perf_counter_ns()
        decision = runner.decide(item)
        observer.episode_decided(item, decision, started, runner.last_loaded)
    except Exception:
        log.exception("isolated episode of %s failed; abandoning the work item", item.instance_id)
        hub.abandon_orchestration(item)
        return
    fault_point("episode.before_checkpoint")
    (outcome,) = hub.checkpoint([(item, decision)])
    observer.committed(Commit(0.0, True, ((item, decision),), (outcome,), (), ()))
    if not outcome.committed:
        log.warning("isolated checkpoint of %s refused: %s", item.instance_id, outcome.reason)


def run_entity(app: App, hub: TaskHub, item: EntityWorkItem, observer: Observer = NOOP) -> None:
    _report("start")
    try:
        batch = observer.run_entity(item, lambda: execute_batch(app, item))
    except Exception:  # a bug of the dispatcher (an operation's own failure is in the batch)
        log.exception("isolated batch of entity %s failed; abandoning it", item.entity_id)
        hub.abandon_entity(item)
        return
    fault_point("entity.ran")
    (stored,) = hub.complete_entities([batch])
    observer.committed(Commit(0.0, True, (), (), (), (), (batch,), (stored,)))
    if not stored:
        log.warning("isolated batch of entity %s refused: its lease was lost", item.entity_id)


def main() -> int:
    request: IsolatedRequest = pickle.load(sys.stdin.buffer)
    _die_with(request.parent_pid)
    # The worker's metrics port is its own: a child traces and logs like it, and the worker counts
    # the child's verdict.
    config = replace(request.config, metrics_port=0)
    configure_logging(config.log_format, os.environ.get("DTCTL_LOG_LEVEL", config.log_level), "isolated")
    try:
        app = load_app(config.app)
        hub = open_hub(config.hub, synchronous=config.synchronous)
        observer = build_observer(config, hub)
    except DtctlError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        _report("infra")
        return ExitCode.OK
    try:
        if isinstance(request.item, ActivityWorkItem):
            run_activity(app, hub, request.item, observer)
        elif isinstance(request.item, EntityWorkItem):
            run_entity(app, hub, request.item, observer)
        else:
            versioning = config.versioning(app.versioning)
            run_episode(app, hub, request.item, versioning.default_version if versioning else None, observer)
    except DtctlError as exc:  # the hub's errors: the item is not to blame
        print(f"error: {exc.message}", file=sys.stderr)
        _report("infra")
        return ExitCode.OK
    finally:
        observer.close()
        hub.close()
    _report("done")
    return ExitCode.OK


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # an activity thread that outlived its result must not hold the exit
