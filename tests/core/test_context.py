"""The deterministic helpers of the context: time, uuids, the replay-safe logger, ActivityContext."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Generator
from datetime import datetime, timedelta
from typing import Any

import pytest

from dtctl.core.context import ActivityContext, OrchestrationContext, from_epoch_us, to_epoch_us
from dtctl.core.replay import execute
from dtctl.core.task import Task
from tests.core.support import START, MakeHistory, charge, first_episode, next_episode


def _sdk_uuid(instance_id: str, moment: datetime, counter: int) -> str:
    namespace = uuid.uuid5(uuid.NAMESPACE_OID, "9e952958-5e33-4daf-827f-2fa12937b875")
    return str(uuid.uuid5(namespace, f"{instance_id}_{moment:%Y-%m-%dT%H:%M:%S.%fZ}_{counter}"))


def test_current_utc_datetime_is_the_naive_time_of_the_episode_being_replayed(
    make_history: MakeHistory,
) -> None:
    seen: list[datetime] = []

    def orchestrator(ctx: OrchestrationContext, _: Any) -> Generator[Task[Any], Any, None]:
        seen.append(ctx.current_utc_datetime)
        yield ctx.call_activity(charge, input=1)
        seen.append(ctx.current_utc_datetime)
        yield ctx.call_activity(charge, input=2)

    h = make_history()
    past = first_episode(h) + h.task_scheduled(0, "charge", 1).take()
    execute(orchestrator, past, next_episode(h, 90).task_completed(0).take())
    assert seen == [START, START + timedelta(seconds=90)]
    assert all(moment.tzinfo is None for moment in seen)


def test_new_uuid_is_the_sdks_derivation_with_a_counter_per_execution(make_history: MakeHistory) -> None:
    made: list[str] = []

    def orchestrator(ctx: OrchestrationContext, _: Any) -> Generator[Task[Any], Any, None]:
        made.extend([ctx.new_uuid(), ctx.new_uuid()])
        yield ctx.call_activity(charge, input=1)
        made.append(ctx.new_uuid())

    h = make_history(instance_id="abc")
    past = first_episode(h) + h.task_scheduled(0, "charge", 1).take()
    execute(orchestrator, past, next_episode(h, 1).task_completed(0).take())
    later = START + timedelta(seconds=1)
    assert made == [_sdk_uuid("abc", START, 0), _sdk_uuid("abc", START, 1), _sdk_uuid("abc", later, 2)]


def test_the_replay_safe_logger_is_silent_while_replaying(
    make_history: MakeHistory, caplog: pytest.LogCaptureFixture
) -> None:
    def orchestrator(ctx: OrchestrationContext, _: Any) -> Generator[Task[Any], Any, None]:
        log = ctx.create_replay_safe_logger(logging.getLogger("orders"))
        log.info("charging %s", 1)
        yield ctx.call_activity(charge, input=1)
        log.warning("charged")
        assert log.isEnabledFor(logging.WARNING)
        log.log(logging.ERROR, "and logged")

    h = make_history()
    past = first_episode(h) + h.task_scheduled(0, "charge", 1).take()
    with caplog.at_level(logging.INFO, logger="orders"):
        execute(orchestrator, past, next_episode(h).task_completed(0).take())
    assert [record.getMessage() for record in caplog.records] == ["charged", "and logged"]


def test_epoch_conversions_take_naive_as_utc_and_convert_aware_values() -> None:
    moment = datetime(2024, 5, 6, 7, 8, 9, 123456)
    assert from_epoch_us(to_epoch_us(moment)) == moment
    aware = datetime.fromisoformat("2024-05-06T09:08:09.123456+02:00")
    assert to_epoch_us(aware) == to_epoch_us(moment)


def test_activity_context_has_the_sdk_properties_and_an_instance_id_alias() -> None:
    ctx = ActivityContext("order-1", 4)
    assert (ctx.orchestration_id, ctx.instance_id, ctx.task_id) == ("order-1", "order-1", 4)
    assert "order-1" in repr(ctx)


def test_context_identity_before_and_after_start() -> None:
    ctx = OrchestrationContext("i", name="n")
    assert (ctx.instance_id, ctx.name, ctx.parent_instance_id, ctx.is_replaying) == ("i", "n", None, False)
    assert ctx.execution_id == ""
