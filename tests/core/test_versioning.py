"""Versions in the replay engine (ctx.version, versioned sub-orchestrations and continue-as-new, activity
tags) and the version order workers judge instances by."""

from __future__ import annotations

import itertools
from collections.abc import Generator
from datetime import timedelta
from typing import Any

import pytest

from dtctl.core.context import OrchestrationContext
from dtctl.core.decision import ContinueAsNew, ScheduleTask, StartSubOrchestration
from dtctl.core.history import (
    COMPLETED,
    CONTINUED_AS_NEW,
    RUNNING,
    ContinuedAsNew,
    SubOrchestrationCreated,
    TaskScheduled,
    decode_event,
    encode_event,
)
from dtctl.core.replay import OrchestrationExecutor, execute
from dtctl.core.task import RetryPolicy
from dtctl.core.versioning import (
    VERSION_MISMATCH,
    VersionFailureStrategy,
    VersioningOptions,
    VersionMatchStrategy,
    compare_versions,
    lease_bounds,
    version_failure,
    version_key,
)
from dtctl.errors import UsageError
from tests.core.support import MakeHistory, charge, first_episode, kinds, next_episode

# --- ctx.version under replay -------------------------------------------------------------------------


def by_version(ctx: OrchestrationContext, _: Any) -> Generator[Any, Any, str]:
    """Old instances keep the old path, new ones take the new one: the sample's pattern."""
    if ctx.version == "1.0":
        yield ctx.call_activity(charge, input=1)
        return "old"
    yield ctx.call_activity(charge, input=2, tags={"path": "new"})
    return "new"


def test_ctx_version_is_the_version_the_execution_started_with(make_history: MakeHistory) -> None:
    h = make_history()
    old = execute(by_version, [], h.orchestrator_started().started(version="1.0").take())
    assert [a for a in old.actions if isinstance(a, ScheduleTask)] == [
        ScheduleTask(task_id=0, name="charge", input="1")
    ]
    h2 = make_history()
    new = execute(by_version, [], h2.orchestrator_started().started(version="2.0").take())
    [action] = new.actions
    assert action == ScheduleTask(task_id=0, name="charge", input="2", tags={"path": "new"})
    [scheduled] = [e for e in new.new_history if isinstance(e, TaskScheduled)]
    assert scheduled.tags == {"path": "new"}
    assert decode_event(encode_event(scheduled)) == scheduled


def test_replay_of_an_old_instance_keeps_its_old_path(make_history: MakeHistory) -> None:
    h = make_history()
    past = h.orchestrator_started().started(version="1.0").task_scheduled(0, "charge", 1).take()
    new = next_episode(h).task_completed(0, "charged 1").take()
    executor = OrchestrationExecutor(by_version)
    decision = executor.execute(past, new)
    assert decision.status == COMPLETED and decision.output == '"old"'
    assert executor.context.version == "1.0"


def test_no_version_reads_as_none(make_history: MakeHistory) -> None:
    def read(ctx: OrchestrationContext, _: Any) -> Any:
        return {"version": ctx.version}

    decision = execute(read, [], first_episode(make_history()))
    assert decision.output == '{"version":null}'


def test_sub_orchestration_version_is_recorded_and_defaults_to_the_workers(make_history: MakeHistory) -> None:
    def parent(ctx: OrchestrationContext, _: Any) -> Generator[Any, Any, None]:
        yield ctx.call_sub_orchestrator("child", version="3.0")
        yield ctx.call_sub_orchestrator("child")

    h = make_history()
    executor = OrchestrationExecutor(parent, default_version="2.5")
    first = executor.execute([], first_episode(h))
    assert first.actions == (
        StartSubOrchestration(task_id=0, name="child", instance_id="order-1:0000", version="3.0"),
    )
    [created] = [e for e in first.new_history if isinstance(e, SubOrchestrationCreated)]
    assert created.version == "3.0"
    past = [*first_episode(make_history()), *first.new_history[1:]]  # replayed from the recorded history
    h2 = make_history()
    second = OrchestrationExecutor(parent, default_version="2.5").execute(
        past, next_episode(h2).sub_orchestration_completed(0).take()
    )
    assert [a.version for a in second.actions if isinstance(a, StartSubOrchestration)] == ["2.5"]
    unversioned = execute(parent, [], first_episode(make_history()))
    assert [a.version for a in unversioned.actions if isinstance(a, StartSubOrchestration)] == ["3.0"]


def test_continue_as_new_keeps_the_version_unless_given_a_new_one(make_history: MakeHistory) -> None:
    def upgrade(ctx: OrchestrationContext, n: int) -> None:
        if n == 0:
            ctx.continue_as_new(1)
        else:
            ctx.continue_as_new(n + 1, new_version="2.0")

    kept = execute(upgrade, [], make_history().orchestrator_started().started(0, version="1.0").take())
    assert kept.status == CONTINUED_AS_NEW
    assert isinstance(kept.continue_as_new, ContinueAsNew) and kept.continue_as_new.version == "1.0"
    moved = execute(upgrade, [], make_history().orchestrator_started().started(1, version="1.0").take())
    assert moved.continue_as_new is not None and moved.continue_as_new.version == "2.0"
    [ended] = [e for e in moved.new_history if isinstance(e, ContinuedAsNew)]
    assert ended.new_version == "2.0"


def test_a_recorded_continue_as_new_replays_with_its_version(make_history: MakeHistory) -> None:
    def once(ctx: OrchestrationContext, n: int) -> None:
        ctx.continue_as_new(n + 1, new_version="9")

    h = make_history()
    first = execute(once, [], h.orchestrator_started().started(0, version="1").take())
    again = execute(once, first.new_history, next_episode(h).take())
    assert again.continue_as_new is not None and again.continue_as_new.version == "9"


def test_retries_keep_the_activity_tags(make_history: MakeHistory) -> None:
    def retried(ctx: OrchestrationContext, _: Any) -> Generator[Any, Any, Any]:
        policy = RetryPolicy(first_retry_interval=timedelta(seconds=1), max_number_of_attempts=2)
        return (yield ctx.call_activity(charge, input=1, retry_policy=policy, tags={"k": "v"}))

    h = make_history()
    past = h.orchestrator_started().started().task_scheduled(0, "charge", 1).take()
    failed = next_episode(h).task_failed(0, ValueError("no")).take()
    decision = execute(retried, past, failed)
    assert decision.status == RUNNING and kinds(decision.new_history)[-1] == "timer_created"
    h.add(decision.new_history[-1]).take()  # the timer is in the decision's history already
    fired = next_episode(h, 2).timer_fired(1).take()
    retry = execute(retried, [*past, *decision.new_history], fired)
    assert [a.tags for a in retry.actions if isinstance(a, ScheduleTask)] == [{"k": "v"}]


def test_bad_tags_fail_at_the_call() -> None:
    def bad(ctx: OrchestrationContext, _: Any) -> Generator[Any, Any, Any]:
        yield ctx.call_activity(charge, tags={"k": 1})  # type: ignore[dict-item]

    from dtctl.testing import HistoryBuilder

    decision = execute(
        bad, [], HistoryBuilder(instance_id="x", name="bad").orchestrator_started().started().take()
    )
    assert decision.failure is not None and decision.failure.error_type.endswith("UsageError")
    with pytest.raises(UsageError):
        from dtctl.core.tags import parse_tag

        parse_tag("no-equals")


# --- the version order ---------------------------------------------------------------------------------

ORDERED = ["", "0.9", "1.0.dev1", "1.0a1", "1.0b2", "1.0rc1", "1.0", "1.0.post1", "1.1", "2", "10.0", "1!0.1"]


def test_versions_order_as_pep_440_and_none_is_the_oldest() -> None:
    for older, newer in itertools.pairwise(ORDERED):
        assert compare_versions(older, newer) == -1, (older, newer)
        assert version_key(older) < version_key(newer)
    assert compare_versions("1.0", "1.0.0") == 0 and compare_versions(None, "") == 0
    assert compare_versions("abc", "abd") == -1  # not PEP 440: as strings
    assert compare_versions("1.0", "abc") == -1  # PEP 440 before the rest (the one difference from the SDK)


def test_the_order_agrees_with_packaging_where_both_parse() -> None:
    packaging = pytest.importorskip("packaging.version")
    samples = [v for v in ORDERED if v] + ["1.0.0", "1.1rc1.post2", "1.1.post1.dev3", "1.1a1.dev2", "v2.0"]
    for a, b in itertools.product(samples, samples):
        pa, pb = packaging.Version(a), packaging.Version(b)
        assert compare_versions(a, b) == (pa > pb) - (pa < pb), (a, b)


@pytest.mark.parametrize(
    ("match", "instance", "refused"),
    [
        (VersionMatchStrategy.NONE, "9.0", None),
        (VersionMatchStrategy.STRICT, "1.0.0", None),
        (VersionMatchStrategy.STRICT, "1.1", "does not match the worker version '1.0'"),
        (VersionMatchStrategy.STRICT, None, "does not match the worker version '1.0'"),
        (VersionMatchStrategy.CURRENT_OR_OLDER, "0.5", None),
        (VersionMatchStrategy.CURRENT_OR_OLDER, None, None),
        (VersionMatchStrategy.CURRENT_OR_OLDER, "1.1", "is greater than the worker version '1.0'"),
    ],
)
def test_version_failure_as_the_sdk_words_it(
    match: VersionMatchStrategy, instance: str | None, refused: str | None
) -> None:
    found = version_failure(VersioningOptions(version="1.0", match_strategy=match), instance)
    if refused is None:
        assert found is None
    else:
        assert found is not None and refused in found.message and found.error_type == VERSION_MISMATCH


def test_lease_bounds_follow_the_strategies() -> None:
    key = version_key("1.0")
    assert lease_bounds(None) == (None, None)
    assert lease_bounds(VersioningOptions(version="1.0", match_strategy=VersionMatchStrategy.STRICT)) == (
        key,
        key,
    )
    assert lease_bounds(
        VersioningOptions(version="1.0", match_strategy=VersionMatchStrategy.CURRENT_OR_OLDER)
    ) == (None, key)
    fail = VersioningOptions(
        version="1.0",
        match_strategy=VersionMatchStrategy.STRICT,
        failure_strategy=VersionFailureStrategy.FAIL,
    )
    assert lease_bounds(fail) == (None, None)
