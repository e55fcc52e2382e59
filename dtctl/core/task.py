"""Durable tasks: what an orchestrator yields, how tasks compose, and how failed work is retried.

A task is a promise the replay engine keeps: it completes when history says the work finished. User
code only creates tasks through :class:`~dtctl.core.context.OrchestrationContext` and combines them
with :func:`when_all` / :func:`when_any`; completing them is the replay engine's job.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Generic, TypeVar

from dtctl.core import payload
from dtctl.core.failure import FailureDetails
from dtctl.errors import NonDeterminismError, OrchestrationStateError, PayloadError

__all__ = [
    "CancellableTask",
    "CompletableTask",
    "CompositeTask",
    "FailureDetails",
    "NonDeterminismError",
    "OrchestrationStateError",
    "RetryPolicy",
    "RetryableTask",
    "Task",
    "TaskCancelledError",
    "TaskFailedError",
    "TimerTask",
    "WhenAllTask",
    "WhenAnyTask",
    "when_all",
    "when_any",
]

T = TypeVar("T")

_ONE_US = timedelta(microseconds=1)


class TaskFailedError(Exception):
    """A durable task failed: an activity raised, a sub-orchestration failed, or a result was unreadable.

    ``details`` carries the original error's fully qualified type, message and stack trace; use
    ``details.is_caused_by(SomeError)`` to branch on the cause.
    """

    def __init__(self, message: str, details: FailureDetails | BaseException) -> None:
        super().__init__(message)
        if isinstance(details, BaseException):
            details = FailureDetails.from_exception(details)
        self._details = details

    @property
    def details(self) -> FailureDetails:
        return self._details


class TaskCancelledError(Exception):
    """Raised by the result of a task the orchestrator cancelled (a timer, an external-event wait)."""


class Task(Generic[T]):
    """Something an orchestrator can ``yield``; it completes with a result or fails with an error."""

    __slots__ = ("_callbacks", "_exception", "_is_complete", "_result")

    def __init__(self) -> None:
        self._is_complete = False
        self._result: Any = None
        # a TaskFailedError, or the TaskCancelledError of a cancelled task
        self._exception: Exception | None = None
        self._callbacks: list[Callable[[Task[Any]], None]] | None = None

    @property
    def is_complete(self) -> bool:
        return self._is_complete

    @property
    def is_failed(self) -> bool:
        """True when the work failed (a cancelled task is complete, not failed)."""
        return isinstance(self._exception, TaskFailedError)

    @property
    def result(self) -> T:
        return self.get_result()

    def get_result(self) -> T:
        """The result; raises the task's :class:`TaskFailedError` if it failed."""
        if not self._is_complete:
            raise ValueError("the task has not completed")
        if self._exception is not None:
            raise self._exception
        result: T = self._result
        return result

    def get_exception(self) -> TaskFailedError:
        error = self._exception
        if not isinstance(error, TaskFailedError):
            raise ValueError("the task has not failed")
        return error

    def add_done_callback(self, callback: Callable[[Task[Any]], None]) -> None:
        """Call ``callback(task)`` when this task completes (how when_all / when_any follow children)."""
        if self._callbacks is None:
            self._callbacks = [callback]
        else:
            self._callbacks.append(callback)

    def outcome(self) -> tuple[Any, Exception | None]:
        """For the replay engine: the result and the error of a complete task, without raising."""
        return self._result, self._exception

    def _finish(self, result: Any) -> None:
        self._result = result
        self._is_complete = True
        if self._callbacks:
            self._notify()

    def _fail(self, error: Exception) -> None:
        self._exception = error
        self._is_complete = True
        if self._callbacks:
            self._notify()

    def _notify(self) -> None:
        for callback in self._callbacks or ():
            callback(self)


class CompletableTask(Task[T]):
    """A task completed from outside: by a history event, or by hand in tests."""

    # ``_hint`` shapes the decoded result (the callee's return annotation); ``_label`` names the work in
    # failure messages ("activity 'charge'").
    __slots__ = ("_hint", "_label")

    def __init__(self, label: str = "task", hint: Any = None) -> None:
        # Task.__init__ inlined: one of these is made per scheduling call, replayed or not
        self._is_complete = False
        self._result: Any = None
        self._exception: Exception | None = None
        self._callbacks: list[Callable[[Task[Any]], None]] | None = None
        self._label = label
        self._hint = hint

    def complete(self, result: T) -> None:
        if self._is_complete:
            raise ValueError("the task has already completed")
        self._finish(result)

    def fail(self, message: str, details: FailureDetails | BaseException) -> None:
        if self._is_complete:
            raise ValueError("the task has already completed")
        self._fail(TaskFailedError(message, details))

    # --- the replay engine's half: history completes the task ------------------------------------------

    def resolve(self, encoded: str | None, converter: payload.DataConverter | None = None) -> None:
        """Complete with a result from history, decoded to the callee's return type (by ``converter``).

        A result that cannot be read fails the task instead, so the orchestrator sees a
        :class:`TaskFailedError` it can handle rather than the episode crashing.
        """
        if encoded is not None:
            try:
                value = payload.decode(encoded, self._hint, converter=converter)
            except PayloadError as error:
                self._fail(TaskFailedError(f"the result of {self._label} could not be read: {error}", error))
                return
        else:
            value = None
        # _finish inlined: this is the completion every replayed result goes through
        self._result = value
        self._is_complete = True
        if self._callbacks:
            self._notify()

    def reject(self, failure: FailureDetails) -> None:
        """Fail with the failure history recorded for the work (an activity or a sub-orchestration)."""
        self._fail(TaskFailedError(f"{self._label} failed: {failure.message}", failure))


class CancellableTask(CompletableTask[T]):
    """A task the orchestrator may give up on: a durable timer, or a wait for an external event.

    :meth:`cancel` completes the task at once; reading its result then raises
    :class:`TaskCancelledError`, and history that would have completed it later is ignored. A
    ``when_any`` that included it sees it as complete, as in the durabletask SDK.
    """

    __slots__ = ("_cancel_handler",)

    def __init__(self, label: str = "task", hint: Any = None) -> None:
        super().__init__(label, hint)
        self._cancel_handler: Callable[[], None] | None = None

    @property
    def is_cancelled(self) -> bool:
        return isinstance(self._exception, TaskCancelledError)

    def set_cancel_handler(self, cancel_handler: Callable[[], None]) -> None:
        """What :meth:`cancel` undoes first (the context sets it: drop the timer, leave the wait queue)."""
        self._cancel_handler = cancel_handler

    def cancel(self) -> bool:
        """Cancel the task; False (and nothing changes) if it has already completed."""
        if self._is_complete:
            return False
        handler = self._cancel_handler
        if handler is not None:
            self._cancel_handler = None
            handler()
        self._fail(TaskCancelledError(f"{self._label} was cancelled"))
        return True


class TimerTask(CancellableTask[None]):
    """Completes (with ``None``) when its durable timer fires; :meth:`cancel` drops the timer."""

    __slots__ = ("fire_at", "retry_of")

    def __init__(self, fire_at: int, retry_of: RetryableTask[Any] | None = None) -> None:
        super().__init__("timer")
        self.fire_at = fire_at  # epoch µs, UTC
        self.retry_of = retry_of  # set for the timer that waits between two attempts of a retryable task


class CompositeTask(Task[T]):
    """A task made of other tasks."""

    __slots__ = ("_tasks",)

    def __init__(self, tasks: Iterable[Task[Any]]) -> None:
        super().__init__()
        self._tasks: list[Task[Any]] = list(tasks)
        for child in self._tasks:
            if not isinstance(child, Task):
                raise TypeError(f"when_all/when_any take durable tasks, not {type(child).__qualname__}")
            child.add_done_callback(self._on_child_done)

    def get_tasks(self) -> list[Task[Any]]:
        return list(self._tasks)

    def _on_child_done(self, child: Task[Any]) -> None:
        raise NotImplementedError


class WhenAllTask(CompositeTask[list[T]]):
    """Completes once every child completed: with their results in input order, or with the first
    failure in input order (after all children finished, so no failure goes unobserved)."""

    __slots__ = ("_done",)

    def __init__(self, tasks: Iterable[Task[T]]) -> None:
        super().__init__(tasks)
        self._done = sum(1 for child in self._tasks if child.is_complete)
        self._settle()

    @property
    def pending_tasks(self) -> int:
        return len(self._tasks) - self._done

    def get_completed_tasks(self) -> int:
        return self._done

    def _on_child_done(self, child: Task[Any]) -> None:
        self._done += 1
        self._settle()

    def _settle(self) -> None:
        if self._is_complete or self._done < len(self._tasks):
            return
        for child in self._tasks:
            error = child.outcome()[1]  # a failure, or a cancellation
            if error is not None:
                self._fail(error)
                return
        self._finish([child.get_result() for child in self._tasks])


class WhenAnyTask(CompositeTask[Task[T]]):
    """Completes with the first child to finish (the task object itself, failed or not)."""

    __slots__ = ()

    def __init__(self, tasks: Iterable[Task[T]]) -> None:
        super().__init__(tasks)
        if not self._tasks:
            raise ValueError("when_any needs at least one task")
        for child in self._tasks:
            if child.is_complete:
                self._finish(child)
                break

    def _on_child_done(self, child: Task[Any]) -> None:
        if not self._is_complete:
            self._finish(child)


def when_all(tasks: Iterable[Task[T]]) -> WhenAllTask[T]:
    """A task that waits for all ``tasks``; its result is their results in order."""
    return WhenAllTask(tasks)


def when_any(tasks: Iterable[Task[T]]) -> WhenAnyTask[T]:
    """A task that completes with whichever of ``tasks`` finishes first; compare it by identity."""
    return WhenAnyTask(tasks)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How a failed activity or sub-orchestration is retried, with durable timers between attempts.

    The delay before attempt ``n + 1`` is ``first_retry_interval * backoff_coefficient ** (n - 1)``,
    capped by ``max_retry_interval``. At most ``max_number_of_attempts`` attempts are made.

    ``retry_timeout`` bounds the whole retrying: it runs from the moment the first attempt was
    scheduled, and a further attempt is made only if it would *start* strictly before that moment plus
    ``retry_timeout`` (the failure's time plus the delay). So with intervals 1, 2, 4, 8 s and a timeout
    of 14 s there are 4 attempts: a 5th would start 15 s in (the durabletask SDK's
    ``test_retry_timeout``). Every time here is orchestration time (the episode's
    ``current_utc_datetime``), not the wall clock, so replay takes the same decision every time.
    """

    first_retry_interval: timedelta
    max_number_of_attempts: int
    backoff_coefficient: float | None = 1.0
    max_retry_interval: timedelta | None = None
    retry_timeout: timedelta | None = None

    def __post_init__(self) -> None:
        _require_interval("first_retry_interval", self.first_retry_interval)
        attempts = self.max_number_of_attempts
        if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
            raise ValueError(f"max_number_of_attempts must be an integer >= 1, not {attempts!r}")
        coefficient = 1.0 if self.backoff_coefficient is None else self.backoff_coefficient
        if isinstance(coefficient, bool) or not isinstance(coefficient, (int, float)) or not coefficient >= 1:
            raise ValueError(f"backoff_coefficient must be a number >= 1, not {coefficient!r}")
        object.__setattr__(self, "backoff_coefficient", float(coefficient))
        if self.max_retry_interval is not None:
            _require_interval("max_retry_interval", self.max_retry_interval)
        if self.retry_timeout is not None:
            _require_interval("retry_timeout", self.retry_timeout)

    def delay_us(self, attempt: int) -> int:
        """Microseconds to wait after failed attempt number ``attempt`` (1-based)."""
        coefficient = self.backoff_coefficient or 1.0
        delay = (self.first_retry_interval // _ONE_US) * math.pow(coefficient, attempt - 1)
        if self.max_retry_interval is not None:
            delay = min(delay, self.max_retry_interval // _ONE_US)
        return round(delay)


def _require_interval(name: str, value: object) -> None:
    if not isinstance(value, timedelta):
        raise TypeError(f"{name} must be a timedelta, not {type(value).__qualname__}")
    if value < timedelta(0):
        raise ValueError(f"{name} must not be negative")


class RetryableTask(CompletableTask[T]):
    """A task whose work is scheduled again (under a new task id) after each failed attempt."""

    __slots__ = ("attempt", "call", "first_attempt_at", "policy")

    def __init__(self, label: str, hint: Any, policy: RetryPolicy, call: Any, now_us: int) -> None:
        super().__init__(label, hint)
        self.policy = policy
        self.call = call  # how to schedule the work again; opaque here, owned by the context
        self.attempt = 1
        self.first_attempt_at = now_us

    def next_delay_us(self, now_us: int) -> int | None:
        """The delay before the next attempt, or None when the policy says to give up."""
        policy = self.policy
        if self.attempt >= policy.max_number_of_attempts:
            return None
        delay = policy.delay_us(self.attempt)
        timeout = policy.retry_timeout
        if timeout is not None and now_us + delay >= self.first_attempt_at + timeout // _ONE_US:
            return None  # the next attempt would start at or after the deadline
        return delay


def not_a_task_error(value: object) -> OrchestrationStateError:
    return OrchestrationStateError(
        f"an orchestrator must yield durable tasks (call_activity, create_timer, when_all, ...); "
        f"it yielded a {type(value).__qualname__}"
    )
