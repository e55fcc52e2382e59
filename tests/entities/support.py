"""A task hub in a dict, for pure tests: orchestrations replayed with ``execute``, entities run with
``run_entity_batch``, every message routed by hand, in an order a seeded random generator picks.

It stands in for the real hub only to show that the orchestration half and the entity half of the
contract fit together (calls, responses, lock forwarding, grants, unlocks); storage, leases and crashes
are the hub's tests.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from dtctl.core import payload
from dtctl.core.app import App
from dtctl.core.context import ActivityContext
from dtctl.core.decision import (
    CallEntity,
    Decision,
    LockEntities,
    ScheduleTask,
    SignalEntity,
    UnlockEntities,
)
from dtctl.core.entity_exec import (
    EntityMessage,
    ForwardLock,
    LockGranted,
    LockHolder,
    MessageKind,
    OperationResponse,
    Outgoing,
    SendSignal,
    StartOrchestration,
    run_entity_batch,
)
from dtctl.core.entity_id import EntityInstanceId
from dtctl.core.failure import FailureDetails
from dtctl.core.history import (
    COMPLETED,
    FAILED,
    TERMINAL_STATUSES,
    EntityLockGranted,
    EntityOperationCompleted,
    EntityOperationFailed,
    ExecutionStarted,
    ExecutionTerminated,
    HistoryEvent,
    OrchestratorStarted,
    TaskCompleted,
    TaskFailed,
)
from dtctl.core.replay import execute


@dataclass
class Instance:
    name: str
    execution_id: str
    history: list[HistoryEvent] = field(default_factory=list)
    inbox: list[HistoryEvent] = field(default_factory=list)
    status: str = "PENDING"
    output: str | None = None
    failure: FailureDetails | None = None


@dataclass
class Entity:
    state: str | None = None
    lock: LockHolder | None = None
    inbox: list[EntityMessage] = field(default_factory=list)


class DictHub:
    def __init__(self, app: App, *, seed: int = 0, batch: int = 10) -> None:
        self.app = app
        self.instances: dict[str, Instance] = {}
        self.entities: dict[str, Entity] = {}
        self.random = random.Random(seed)
        self.batch = batch
        self.clock = 1_700_000_000_000_000
        self._ids = 0

    # --- what a client does --------------------------------------------------------------------------

    def start(self, name: str, input: Any = None, instance_id: str | None = None) -> str:
        instance_id = instance_id or f"orch-{len(self.instances)}"
        execution_id = f"{instance_id}-e1"
        started = ExecutionStarted(
            timestamp=self.clock,
            name=name,
            instance_id=instance_id,
            execution_id=execution_id,
            input=payload.encode(input),
        )
        self.instances[instance_id] = Instance(name, execution_id, inbox=[started])
        return instance_id

    def signal(self, entity_id: EntityInstanceId | str, operation: str, input: Any = None) -> None:
        message = EntityMessage(
            id=0, kind=MessageKind.SIGNAL, operation=operation, input=payload.encode(input)
        )
        self.send(str(entity_id), message)

    def terminate(self, instance_id: str) -> None:
        self.instances[instance_id].inbox.append(ExecutionTerminated(timestamp=self.clock, reason="stop"))

    def state_of(self, entity_id: EntityInstanceId | str) -> Any:
        entity = self.entities.get(str(entity_id))
        return None if entity is None else payload.decode(entity.state)

    def output_of(self, instance_id: str) -> Any:
        return payload.decode(self.instances[instance_id].output)

    # --- running ---------------------------------------------------------------------------------------

    def run(self, max_steps: int = 100_000) -> None:
        """Process work items in random order until there is none."""
        for _ in range(max_steps):
            work = [
                ("o", key)
                for key, i in self.instances.items()
                if i.inbox and i.status not in TERMINAL_STATUSES
            ]
            work += [("e", key) for key, e in self.entities.items() if e.inbox]
            if not work:
                return
            kind, key = self.random.choice(work)
            self.clock += 1000
            if kind == "o":
                self._episode(key)
            else:
                self._entity_batch(key)
        raise AssertionError("the hub did not settle")

    def send(self, entity_id: str, message: EntityMessage) -> None:
        self._ids += 1
        message = EntityMessage(**{**_fields(message), "id": self._ids})
        self.entities.setdefault(entity_id, Entity()).inbox.append(message)

    def _episode(self, instance_id: str) -> None:
        instance = self.instances[instance_id]
        new, instance.inbox = [OrchestratorStarted(timestamp=self.clock), *instance.inbox], []
        definition = self.app.get_orchestrator(instance.name)
        assert definition is not None
        decision = execute(definition, instance.history, new)
        instance.history.extend(decision.new_history)
        instance.status, instance.output, instance.failure = (
            decision.status,
            decision.output,
            decision.failure,
        )
        self._dispatch(instance_id, instance, decision)

    def _dispatch(self, instance_id: str, instance: Instance, decision: Decision) -> None:
        for action in decision.actions:
            sender = {"sender_instance_id": instance_id, "sender_execution_id": instance.execution_id}
            if isinstance(action, CallEntity):
                self.send(action.entity_id, _message(MessageKind.CALL, action, sender))
            elif isinstance(action, SignalEntity):
                self.send(action.entity_id, _message(MessageKind.SIGNAL, action, sender))
            elif isinstance(action, LockEntities):
                lock = EntityMessage(
                    id=0,
                    kind=MessageKind.LOCK,
                    sender_task_id=action.task_id,
                    critical_section_id=action.critical_section_id,
                    lock_set=action.entity_ids,
                    **sender,
                )
                self.send(action.entity_ids[0], lock)
            elif isinstance(action, UnlockEntities):
                for entity_id in action.entity_ids:
                    unlock = EntityMessage(
                        id=0,
                        kind=MessageKind.UNLOCK,
                        critical_section_id=action.critical_section_id,
                        **sender,
                    )
                    self.send(entity_id, unlock)
            elif isinstance(action, ScheduleTask):
                instance.inbox.append(self._activity(action))
            else:
                raise AssertionError(f"the dict hub does not do {action}")

    def _activity(self, action: ScheduleTask) -> HistoryEvent:
        definition = self.app.get_activity(action.name)
        assert definition is not None
        try:
            result = definition.fn(ActivityContext("", action.task_id), definition.decode_input(action.input))
        except Exception as error:
            return TaskFailed(
                timestamp=self.clock, task_id=action.task_id, failure=FailureDetails.from_exception(error)
            )
        return TaskCompleted(
            timestamp=self.clock, task_id=action.task_id, result=definition.encode_output(result)
        )

    def _entity_batch(self, entity_id: str) -> None:
        entity = self.entities[entity_id]
        parsed = EntityInstanceId.parse(entity_id)
        messages = select_batch(entity.inbox, entity.lock, self.batch)
        result = run_entity_batch(
            self.app.get_entity(parsed.entity), parsed, entity.state, entity.lock, messages, now=self.clock
        )
        consumed = set(result.consumed)
        assert consumed <= {m.id for m in messages}
        entity.inbox = [m for m in entity.inbox if m.id not in consumed]
        entity.state, entity.lock = result.state, result.lock
        for out in result.outgoing:
            self._route(out)

    def _route(self, out: Outgoing) -> None:
        if isinstance(out, OperationResponse):
            event: HistoryEvent
            if out.failure is not None:
                event = EntityOperationFailed(timestamp=self.clock, task_id=out.task_id, failure=out.failure)
            else:
                event = EntityOperationCompleted(timestamp=self.clock, task_id=out.task_id, result=out.result)
            self._to_instance(out.instance_id, event)
        elif isinstance(out, LockGranted):
            granted = EntityLockGranted(
                timestamp=self.clock, task_id=out.task_id, critical_section_id=out.critical_section_id
            )
            self._to_instance(out.instance_id, granted)
        elif isinstance(out, ForwardLock):
            self.send(out.entity_id, out.message)
        elif isinstance(out, SendSignal):
            signal = EntityMessage(id=0, kind=MessageKind.SIGNAL, operation=out.operation, input=out.input)
            self.send(out.entity_id, signal)
        elif isinstance(out, StartOrchestration):
            self.start(out.name, payload.decode(out.input), out.instance_id)

    def _to_instance(self, instance_id: str, event: HistoryEvent) -> None:
        instance = self.instances.get(instance_id)
        if instance is not None and instance.status not in TERMINAL_STATUSES:
            instance.inbox.append(event)


def select_batch(inbox: list[EntityMessage], lock: LockHolder | None, limit: int) -> list[EntityMessage]:
    """What a hub hands the executor: the oldest messages; while the entity is locked, the holder's
    messages and the unlocks (the others cannot run yet, and a batch of only those would never reach the
    holder's), up to the holder's unlock, after which the waiting messages come first again."""
    if lock is None:
        return inbox[:limit]
    chosen: list[EntityMessage] = []
    for message in inbox:
        if message.kind is MessageKind.UNLOCK or (
            message.sender_instance_id == lock.instance_id and message.kind is not MessageKind.LOCK
        ):
            chosen.append(message)
            releases = (
                message.kind is MessageKind.UNLOCK and message.critical_section_id == lock.critical_section_id
            )
            if releases or len(chosen) == limit:
                break
    return chosen


def _fields(message: EntityMessage) -> dict[str, Any]:
    return {name: getattr(message, name) for name in EntityMessage.__dataclass_fields__}


def _message(kind: MessageKind, action: CallEntity | SignalEntity, sender: dict[str, Any]) -> EntityMessage:
    return EntityMessage(
        id=0,
        kind=kind,
        operation=action.operation,
        input=action.input,
        sender_task_id=action.task_id,
        **sender,
    )


__all__ = ["COMPLETED", "FAILED", "DictHub"]
