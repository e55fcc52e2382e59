"""One step at a time: a leased work item becomes a decision (replay) or a result (activity).

Nothing here talks to the hub except :meth:`EpisodeRunner.decide`, which loads history on a cache miss;
the worker loop owns leasing and committing, so the rules that make crashes safe live in one place.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from dtctl.core.app import ActivityDefinition, App
from dtctl.core.context import ActivityContext
from dtctl.core.decision import Decision
from dtctl.core.failure import FailureDetails
from dtctl.core.history import (
    FAILED,
    RUNNING,
    SUSPENDED,
    ExecutionCompleted,
    HistoryEvent,
    OrchestratorStarted,
    TaskCompleted,
    TaskFailed,
)
from dtctl.core.replay import OrchestrationExecutor
from dtctl.hub.base import ActivityResult, ActivityWorkItem, OrchestrationWorkItem, TaskHub
from dtctl.observe import NOOP, Observer
from dtctl.runtime.middleware import WorkContext, run_with_middleware

if TYPE_CHECKING:
    import asyncio

log = logging.getLogger("dtctl.worker")

POISON_ERROR_TYPE = "dtctl.errors.PoisonWorkItem"


def _now_us() -> int:
    return time.time_ns() // 1000


# --- orchestrations -------------------------------------------------------------------------------


@dataclass(slots=True)
class _CachedInstance:
    execution_id: str
    history_length: int
    executor: OrchestrationExecutor


class EpisodeRunner:
    """Runs episodes and keeps running instances' replay state warm between them.

    A cached executor is used only when the leased item's execution id and history length are exactly
    what the cache saw after its last committed checkpoint; anything else (another worker processed the
    instance meanwhile, a checkpoint was refused) means the history changed under it: reload and replay.
    """

    def __init__(
        self, app: App, hub: TaskHub, *, cache_size: int = 2048, default_version: str | None = None
    ) -> None:
        self._app = app
        self._hub = hub
        self._default_version = default_version  # for sub-orchestrations started without a version
        self._cache: OrderedDict[str, _CachedInstance] = OrderedDict()
        self._cache_size = cache_size
        self._pending: dict[str, _CachedInstance] = {}
        self.warm = 0  # episodes resumed from the cache
        self.loaded = 0  # episodes that loaded and replayed history
        self.last_loaded: int | None = None  # history events the last episode loaded (None: warm)

    def decide(self, item: OrchestrationWorkItem) -> Decision:
        definition = self._app.get_orchestrator(item.name)
        if definition is None:  # the hub only leases registered names; a race with a code change
            raise LookupError(f"orchestrator {item.name!r} is not registered in this worker")
        new_events: list[HistoryEvent] = [OrchestratorStarted(timestamp=item.leased_at)]
        new_events.extend(m.event for m in item.messages)

        work = WorkContext("orchestration", item.name, item.instance_id, None, item.dequeue_count)
        cached = self._cache.pop(item.instance_id, None)
        if (
            cached
            and cached.execution_id == item.execution_id
            and cached.history_length == item.history_length
        ):
            executor = cached.executor
            self.warm += 1
            self.last_loaded = None
            decision = run_with_middleware(self._app.middleware, work, lambda: executor.resume(new_events))
        else:
            past = self._hub.load_history(item.instance_id, item.execution_id)
            self.loaded += 1
            self.last_loaded = len(past)
            executor = OrchestrationExecutor(definition, default_version=self._default_version)
            decision = run_with_middleware(
                self._app.middleware, work, lambda: executor.execute(past, new_events)
            )
        if decision.status in (RUNNING, SUSPENDED):
            length = item.history_length + len(decision.new_history)
            self._pending[item.instance_id] = _CachedInstance(item.execution_id, length, executor)
        return decision

    def settled(self, instance_id: str, committed: bool) -> None:
        """Called after the checkpoint: only a committed episode's state may be reused."""
        entry = self._pending.pop(instance_id, None)
        if entry is None or not committed:
            return
        self._cache[instance_id] = entry
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def forget(self, instance_id: str) -> None:
        self._pending.pop(instance_id, None)
        self._cache.pop(instance_id, None)

    @property
    def cached(self) -> int:
        return len(self._cache)


def leased_too_often(kind: str, name: str, count: int, limit: int) -> str:
    """Why an item is poison when no isolated run reached a verdict (its worker kept dying around it)."""
    return (
        f"{kind} {name!r} was leased {count} times without completing (limit {limit}); "
        "the worker running it crashed or timed out each time"
    )


def poison_decision(item: OrchestrationWorkItem, message: str) -> Decision:
    """Fail an instance whose episode keeps crashing workers, instead of crashing them forever."""
    return failed_decision(item, FailureDetails(message=message, error_type=POISON_ERROR_TYPE))


def failed_decision(item: OrchestrationWorkItem, failure: FailureDetails) -> Decision:
    """Fail the instance without running its code (poison; a version this worker must not run)."""
    consumed = [m.event for m in item.messages]
    history: list[HistoryEvent] = [OrchestratorStarted(timestamp=item.leased_at), *consumed]
    history.append(ExecutionCompleted(timestamp=item.leased_at, status=FAILED, failure=failure))
    return Decision(status=FAILED, new_history=tuple(history), failure=failure)


# --- activities ---------------------------------------------------------------------------------------


def poison_result(item: ActivityWorkItem, message: str) -> ActivityResult:
    failure = FailureDetails(message=message, error_type=POISON_ERROR_TYPE)
    return ActivityResult(item, TaskFailed(timestamp=_now_us(), task_id=item.task_id, failure=failure))


def execute_activity(app: App, definition: ActivityDefinition, item: ActivityWorkItem) -> ActivityResult:
    """Run the activity body; any exception becomes a task_failed with its details."""
    work = WorkContext("activity", item.name, item.instance_id, item.task_id, item.dequeue_count)

    def call() -> Any:
        ctx = ActivityContext(item.instance_id, item.task_id)
        value = definition.fn(ctx, definition.decode_input(item.input))
        if definition.is_async:
            value = _AsyncRunner.shared().run(value)
        return definition.encode_output(value)

    try:
        result = run_with_middleware(app.middleware, work, call)
        event: TaskCompleted | TaskFailed = TaskCompleted(
            timestamp=_now_us(), task_id=item.task_id, result=result
        )
    except Exception as exc:
        event = TaskFailed(
            timestamp=_now_us(), task_id=item.task_id, failure=FailureDetails.from_exception(exc)
        )
    return ActivityResult(item, event)


class _AsyncRunner:
    """One event loop in a daemon thread for ``async def`` activities, started on first use."""

    _instance: _AsyncRunner | None = None
    _lock = threading.Lock()

    def __init__(self) -> None:
        import asyncio  # with ssl it is a third of an idle worker's memory: only for async activities

        self._loop: asyncio.AbstractEventLoop = asyncio.new_event_loop()
        threading.Thread(target=self._loop.run_forever, name="dtctl-async-activities", daemon=True).start()

    @classmethod
    def shared(cls) -> _AsyncRunner:
        with cls._lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def run(self, coroutine: Any) -> Any:
        import asyncio

        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()


class ActivityPool:
    """Runs activities on threads; finished results are handed to ``on_done`` from those threads."""

    def __init__(
        self, app: App, size: int, on_done: Callable[[ActivityResult], None], observer: Observer = NOOP
    ) -> None:
        self._app = app
        self._observer = observer
        self._pool = ThreadPoolExecutor(max_workers=size, thread_name_prefix="dtctl-activity")
        self._on_done = on_done
        self._inflight: dict[int, ActivityWorkItem] = {}
        self._lock = threading.Lock()
        self.size = size

    def submit(self, item: ActivityWorkItem) -> None:
        definition = self._app.get_activity(item.name)
        if definition is None:
            raise LookupError(f"activity {item.name!r} is not registered in this worker")
        with self._lock:
            self._inflight[item.id] = item
        run = partial(execute_activity, self._app, definition, item)
        future = self._pool.submit(self._observer.run_activity, item, run)
        future.add_done_callback(self._finished)

    def _finished(self, future: Future[ActivityResult]) -> None:
        result = future.result()
        # Hand the result over before forgetting the item, so a draining worker never sees
        # "nothing in flight, nothing to commit" while a result is between the two.
        self._on_done(result)
        with self._lock:
            self._inflight.pop(result.item.id, None)

    def inflight(self) -> list[ActivityWorkItem]:
        with self._lock:
            return list(self._inflight.values())

    @property
    def free_slots(self) -> int:
        with self._lock:
            return self.size - len(self._inflight)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
