"""The replay benchmark's workload stays a valid history (so its figures mean something)."""

from __future__ import annotations

import pytest

from benchmarks.replay import chain, history_of_length, next_episode
from dtctl.core.decision import ScheduleTask
from dtctl.core.history import RUNNING
from dtctl.core.replay import OrchestrationExecutor, execute


@pytest.mark.parametrize("length", [10, 11, 100, 1_001])
def test_the_benchmark_history_replays_cleanly_at_its_exact_length(length: int) -> None:
    history, waiting_on = history_of_length(length)
    assert len(history) == length
    decision = execute(chain, history, next_episode(waiting_on))
    assert decision.status == RUNNING and decision.failure is None
    assert decision.actions == (ScheduleTask(task_id=waiting_on + 1, name="step", input=str(waiting_on + 1)),)
    executor = OrchestrationExecutor(chain)
    executor.execute(history, [])
    assert executor.resume(next_episode(waiting_on)) == decision
