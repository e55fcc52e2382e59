"""Tasks on their own: completion, failure, when_all / when_any composition."""

from __future__ import annotations

from typing import Any

import pytest

from dtctl.core.failure import FailureDetails
from dtctl.core.task import CompletableTask, TaskFailedError, WhenAllTask, WhenAnyTask, when_all, when_any

DETAILS = FailureDetails(message="boom", error_type="builtins.ValueError")


def test_a_task_completes_once_with_a_result() -> None:
    task: CompletableTask[int] = CompletableTask()
    assert (task.is_complete, task.is_failed) == (False, False)
    with pytest.raises(ValueError, match="not completed"):
        task.get_result()
    task.complete(3)
    assert (task.is_complete, task.get_result(), task.result) == (True, 3, 3)
    with pytest.raises(ValueError, match="already completed"):
        task.complete(4)
    with pytest.raises(ValueError, match="not failed"):
        task.get_exception()


def test_a_failed_task_raises_its_error() -> None:
    task: CompletableTask[int] = CompletableTask()
    task.fail("activity 'x' failed: boom", DETAILS)
    assert task.is_failed
    with pytest.raises(TaskFailedError, match="activity 'x' failed") as raised:
        task.get_result()
    assert raised.value is task.get_exception()
    assert raised.value.details.is_caused_by(ValueError)


def test_task_failed_error_accepts_an_exception_as_details() -> None:
    error = TaskFailedError("wrapped", KeyError("k"))
    assert error.details.error_type == "builtins.KeyError"


def test_when_all_counts_and_orders_results() -> None:
    first: CompletableTask[str] = CompletableTask()
    second: CompletableTask[str] = CompletableTask()
    second.complete("b")
    both = when_all([first, second])
    assert isinstance(both, WhenAllTask)
    assert (both.pending_tasks, both.get_completed_tasks(), both.is_complete) == (1, 1, False)
    first.complete("a")
    assert both.get_result() == ["a", "b"]
    assert both.get_tasks() == [first, second]


def test_when_all_waits_for_every_child_before_raising_the_first_failure() -> None:
    first: CompletableTask[str] = CompletableTask()
    second: CompletableTask[str] = CompletableTask()
    third: CompletableTask[str] = CompletableTask()
    group = when_all([first, second, third])
    third.fail("third", DETAILS)
    assert not group.is_complete
    second.fail("second", DETAILS)
    first.complete("ok")
    assert group.get_exception() is second.get_exception()


def test_when_any_completes_with_the_first_child_even_a_failed_one() -> None:
    first: CompletableTask[str] = CompletableTask()
    second: CompletableTask[str] = CompletableTask()
    race = when_any([first, second])
    second.fail("lost", DETAILS)
    first.complete("late")
    assert race.get_result() is second
    already = when_any([first, second])
    assert already.get_result() is first


def test_composites_nest_and_refuse_what_is_not_a_task() -> None:
    inner: CompletableTask[int] = CompletableTask()
    other: CompletableTask[int] = CompletableTask()
    outer: WhenAnyTask[Any] = when_any([when_all([inner]), other])
    inner.complete(1)
    assert outer.get_result().get_result() == [1]
    with pytest.raises(TypeError, match="not int"):
        when_all([1])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least one"):
        when_any([])
