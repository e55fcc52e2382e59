"""``durabletask.client``: ``TaskHubGrpcClient`` and ``OrchestrationStatus`` over a dtctl client."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from dtctl.client import TaskHubClient
from dtctl.core import payload
from dtctl.core.entity_exec import LockHolder
from dtctl.core.entity_id import EntityInstanceId
from dtctl.core.failure import FailureDetails
from dtctl.hub.base import InstanceState
from tests.entities import sdk


class OrchestrationStatus(Enum):
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    CONTINUED_AS_NEW = "CONTINUED_AS_NEW"
    FAILED = "FAILED"
    TERMINATED = "TERMINATED"
    PENDING = "PENDING"
    SUSPENDED = "SUSPENDED"


@dataclass
class OrchestrationState:
    instance_id: str
    name: str
    runtime_status: OrchestrationStatus
    serialized_input: str | None
    serialized_output: str | None
    serialized_custom_status: str | None
    failure_details: FailureDetails | None

    @classmethod
    def of(cls, state: InstanceState) -> OrchestrationState:
        return cls(
            state.instance_id,
            state.name,
            OrchestrationStatus(state.status),
            _json_or_none(state.input),
            _json_or_none(state.output),
            _json_or_none(state.custom_status),
            state.failure,
        )


def _json_or_none(text: str | None) -> str | None:
    return None if text in (None, "null") else text


@dataclass
class EntityMetadata:
    id: EntityInstanceId
    last_modified: datetime
    backlog_queue_size: int
    locked_by: str | None
    includes_state: bool
    _state: str | None

    def get_state(self, intended_type: Any = None) -> Any:
        return payload.decode(self._state, intended_type)


class TaskHubGrpcClient:
    def __init__(self, host_address: str | None = None, **_options: Any) -> None:
        self._client = TaskHubClient(str(sdk.hub_for(host_address)))

    def schedule_new_orchestration(
        self, orchestrator: Any, *, input: Any = None, instance_id: str | None = None
    ) -> str:
        return self._client.start_instance(orchestrator, input=input, instance_id=instance_id)

    def wait_for_orchestration_completion(
        self, instance_id: str, *, timeout: float = 60
    ) -> OrchestrationState:
        return OrchestrationState.of(self._client.wait_for_completion(instance_id, timeout=timeout))

    def signal_entity(
        self,
        entity_instance_id: EntityInstanceId,
        operation_name: str,
        input: Any = None,
        signal_time: datetime | None = None,
    ) -> None:
        self._client.signal_entity(entity_instance_id, operation_name, input, signal_time=signal_time)

    def get_entity(
        self, entity_instance_id: EntityInstanceId, include_state: bool = True
    ) -> EntityMetadata | None:
        found = self._client.get_entity(entity_instance_id, include_state=include_state)
        if found is None:
            return None
        lock: LockHolder | None = found.lock
        return EntityMetadata(
            EntityInstanceId(found.name, found.key),
            datetime.fromtimestamp(found.last_modified / 1_000_000, UTC),
            found.backlog,
            None if lock is None else lock.instance_id,
            include_state,
            found.state,
        )

    def wait_until_idle(self, timeout: float = 30) -> None:
        """In place of the SDK tests' ``time.sleep(n)  # wait for ... to be processed``: every entity
        inbox empty and every instance finished (polled with a deadline)."""
        from tests.helpers import wait_until

        def idle() -> bool:
            busy = self._client.list_instances(statuses=["PENDING", "RUNNING"]).instances
            return not busy and all(e.backlog == 0 for e in self._client.iter_entities())

        wait_until(idle, timeout=timeout, what="the hub to be idle")

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> TaskHubGrpcClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
