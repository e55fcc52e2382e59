"""Suspect work items run alone, so a crash or a runaway is charged to the item that caused it.

Activities share a worker process as threads, episodes share its main thread, and the entities a
worker leases in one step commit together: an activity or entity operation that segfaults or calls
``os._exit`` kills everything its process had leased, and an episode that never yields stops
everything its process would have done. Counting each such death against every item the process held
would fail innocent work as poison. So an item that was leased before and never completed
(dequeue count ≥ 2: its process died, stalled or timed out around it) is a *suspect*: it runs in a
fresh interpreter of its own (``python -m dtctl.runtime.isolated``), which gets the work item over
stdin and commits its result or checkpoint itself with the same lease token (fencing is unchanged: a
lease lost meanwhile refuses the commit). The worker keeps renewing the lease and watches the child.

Only what an isolated run does is held against the item: a child killed by a signal or exiting on its
own without reporting is a crash (retried alone, up to the poison limit); an episode that runs longer
than the stall timeout, or an activity whose process stops reporting progress that long, is a runaway
(one verdict is enough: the bound is already far above any legitimate step). The worker then fails the
item as poison with a reason naming it and the cause.
"""

from __future__ import annotations

import enum
import logging
import os
import pickle
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from dtctl.hub.base import ActivityWorkItem, EntityWorkItem, OrchestrationWorkItem
from dtctl.runtime.config import WorkerConfig

log = logging.getLogger("dtctl.worker")

# An item leased this many times without completing has been in a process that died or stalled.
SUSPECT_DEQUEUE_COUNT = 2
# A suspect whose worker keeps dying around it without any isolated run reaching a verdict is failed
# after max_dequeue times this many leases (a backstop; crashes and runaways alone decide sooner).
UNJUDGED_LEASE_FACTOR = 4
# A child needs this long, on a busy machine, to start Python, import the app and open the hub,
# before its work item starts and the stall bound applies.
STARTUP_ALLOWANCE = 30.0
# How often an isolated activity's process says it is still making progress.
BEAT_SECONDS = 0.5

WorkItem = ActivityWorkItem | OrchestrationWorkItem | EntityWorkItem


class Verdict(enum.Enum):
    DONE = "done"  # the child committed, was refused (lease lost), or abandoned after an exception
    GAVE_UP = "gave_up"  # the child could not reach the hub, or the worker is stopping: nothing to charge
    CRASHED = "crashed"  # the child died without reporting: a signal, or an exit of its own
    RAN_AWAY = "ran_away"  # it ran past the stall timeout and was killed


@dataclass(frozen=True, slots=True)
class IsolatedRequest:
    """What the child reads from stdin (pickled: parent and child are the same code)."""

    config: WorkerConfig
    item: WorkItem
    parent_pid: int


@dataclass(frozen=True, slots=True)
class IsolatedOutcome:
    item: WorkItem
    verdict: Verdict
    detail: str = ""  # for a crash: "SIGSEGV" or "exit code 1"; for a runaway: what ran too long


def is_suspect(item: WorkItem) -> bool:
    return item.dequeue_count >= SUSPECT_DEQUEUE_COUNT


def describe(item: WorkItem) -> str:
    if isinstance(item, EntityWorkItem):
        # A suspect entity is leased with one message (the hub narrows it), so that one is the culprit.
        first = item.messages[0] if item.messages else None
        operation = first.operation if first is not None and first.operation else None
        where = f"entity {item.entity_id!r}"
        return f"operation {operation!r} on {where}" if operation else where
    kind = "activity" if isinstance(item, ActivityWorkItem) else "orchestrator"
    return f"{kind} {item.name!r}"


def kind_of(item: WorkItem) -> str:
    """The work item's kind as metrics label it."""
    if isinstance(item, EntityWorkItem):
        return "entity"
    return "activity" if isinstance(item, ActivityWorkItem) else "orchestration"


def item_key(item: WorkItem) -> tuple[str, int]:
    """Which work item an isolated crash is counted against (across the child runs of one lease)."""
    if isinstance(item, EntityWorkItem):
        return (item.entity_id, -2)
    return (item.instance_id, item.task_id if isinstance(item, ActivityWorkItem) else -1)


def crash_detail(returncode: int) -> str:
    if returncode < 0:
        try:
            return signal.Signals(-returncode).name
        except ValueError:
            return f"signal {-returncode}"
    return f"exit code {returncode}"


class Isolator:
    """Runs suspects in child processes, at most ``at_once`` at a time; reports each outcome."""

    def __init__(
        self, config: WorkerConfig, on_done: Callable[[IsolatedOutcome], None], *, at_once: int
    ) -> None:
        self._config = config
        self._on_done = on_done
        self._slots = threading.Semaphore(at_once)
        self._lock = threading.Lock()
        self._inflight: dict[int, WorkItem] = {}  # keyed by id() of the item: both kinds, no clash
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        self._stopping = threading.Event()

    def submit(self, item: WorkItem) -> None:
        with self._lock:
            self._inflight[id(item)] = item
        threading.Thread(target=self._run, args=(item,), name="dtctl-isolated", daemon=True).start()

    def activities(self) -> list[ActivityWorkItem]:
        with self._lock:
            return [i for i in self._inflight.values() if isinstance(i, ActivityWorkItem)]

    def orchestrations(self) -> list[OrchestrationWorkItem]:
        with self._lock:
            return [i for i in self._inflight.values() if isinstance(i, OrchestrationWorkItem)]

    def entities(self) -> list[EntityWorkItem]:
        with self._lock:
            return [i for i in self._inflight.values() if isinstance(i, EntityWorkItem)]

    def busy(self) -> bool:
        with self._lock:
            return bool(self._inflight)

    def stop(self) -> None:
        """Kill every child (their items' leases are released by the draining worker)."""
        self._stopping.set()
        with self._lock:
            children = list(self._children.values())
        for child in children:
            if child.poll() is None:
                child.kill()

    def _run(self, item: WorkItem) -> None:
        try:
            with self._slots:
                outcome = self._watch(item)
        except Exception as exc:  # a failure to spawn is the machine's, not the item's
            log.exception("could not run %s in isolation", describe(item))
            outcome = IsolatedOutcome(item, Verdict.GAVE_UP, str(exc))
        # Hand the outcome over before forgetting the item, so "nothing in flight" means "all settled".
        self._on_done(outcome)
        with self._lock:
            self._inflight.pop(id(item), None)

    def _watch(self, item: WorkItem) -> IsolatedOutcome:
        if self._stopping.is_set():
            return IsolatedOutcome(item, Verdict.GAVE_UP, "the worker is stopping")
        child = subprocess.Popen(
            [sys.executable, "-m", "dtctl.runtime.isolated"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        with self._lock:
            self._children[id(item)] = child
        try:
            return self._follow(item, child)
        finally:
            with self._lock:
                self._children.pop(id(item), None)
            if child.poll() is None:
                child.kill()
            child.wait()
            assert child.stdout is not None
            child.stdout.close()

    def _follow(self, item: WorkItem, child: subprocess.Popen[bytes]) -> IsolatedOutcome:
        assert child.stdin is not None and child.stdout is not None
        try:
            child.stdin.write(pickle.dumps(IsolatedRequest(self._config, item, os.getpid())))
            child.stdin.close()
        except BrokenPipeError:
            pass  # it died already: its exit status says how
        bound = self._config.stall_timeout
        reported = _watch_progress(child, item, bound)
        if reported is None:  # silent past the bound: stopped
            child.kill()
            child.wait()
            if self._stopping.is_set():
                return IsolatedOutcome(item, Verdict.GAVE_UP, "the worker is stopping")
            return IsolatedOutcome(item, Verdict.RAN_AWAY, _runaway(item, bound))
        code = child.wait()
        if reported == "done" and code == 0:
            return IsolatedOutcome(item, Verdict.DONE)
        if self._stopping.is_set() or (reported == "infra" and code == 0):
            return IsolatedOutcome(item, Verdict.GAVE_UP, "the isolated process could not reach the hub")
        return IsolatedOutcome(item, Verdict.CRASHED, crash_detail(code))


def _watch_progress(child: subprocess.Popen[bytes], item: WorkItem, bound: float) -> str | None:
    """Reads the child's progress words until it closes its output; returns its last report ("" when it
    made none), or None when it stayed silent past ``bound`` (after a start-up allowance)."""
    assert child.stdout is not None
    deadline = time.monotonic() + STARTUP_ALLOWANCE + bound
    reported = ""
    fd = child.stdout.fileno()
    pending = b""
    while (remaining := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([fd], [], [], min(remaining, 0.5))
        if not ready:
            continue
        chunk = os.read(fd, 4096)
        if not chunk:
            return reported
        *lines, pending = (pending + chunk).split(b"\n")
        for line in lines:
            word = line.decode(errors="replace").strip()
            if word == "start" or (word == "beat" and isinstance(item, ActivityWorkItem)):
                deadline = time.monotonic() + bound
            elif word in ("done", "infra"):
                reported = word
    return None


def _runaway(item: WorkItem, bound: float) -> str:
    if isinstance(item, ActivityWorkItem):
        return f"its process made no progress for longer than the stall timeout ({bound:g}s)"
    if isinstance(item, EntityWorkItem):
        return f"its batch ran longer than the stall timeout ({bound:g}s)"
    return f"its episode ran longer than the stall timeout ({bound:g}s)"


def crash_poison_message(item: WorkItem, crashes: int, detail: str) -> str:
    return (
        f"{describe(item)} crashed its isolated worker process {crashes} times ({detail}); "
        "it is failed as poison"
    )


def runaway_poison_message(item: WorkItem, detail: str) -> str:
    return f"{describe(item)} was stopped in its isolated worker process: {detail}; it is failed as poison"
