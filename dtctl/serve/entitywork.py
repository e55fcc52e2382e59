"""Entity work items for SDK workers: a leased entity as an ``EntityBatchRequest``, its result as a batch.

The SDK runs only operations; dtctl's inbox also holds lock and unlock messages of critical sections,
and while an entity is locked only its holder's messages may run. Which messages a batch applies, and
what they do to the lock, depends on the lock and unlock messages alone, never on an operation's
outcome. So serve plans the batch with dtctl's own pure executor before the SDK sees it
(:func:`plan`): the plan says which messages are consumed, the lock the entity ends with, the lock
forwards and grants to send, and which operations run, in order. Only those operations travel to the
SDK; a batch of lock traffic alone never leaves serve. When the SDK answers, :func:`settle` puts its
outcomes into the plan's places (one result per operation, in order) and adds what the operations sent:
the :class:`~dtctl.hub.entity_records.EntityBatch` a native worker would have committed, fenced by the
same lease token, which is the completion token.

Nothing here touches the hub: a result the hub refuses (the lease was lost) leaves nothing behind, and
the entity's next owner plans its batch afresh.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from dtctl.core.entity_exec import (
    EntityBatchResult,
    EntityMessage,
    MessageKind,
    OperationResponse,
    Outgoing,
    SendSignal,
    StartOrchestration,
    run_entity_batch,
)
from dtctl.core.entity_id import EntityInstanceId
from dtctl.core.failure import FailureDetails
from dtctl.hub.entity_records import EntityBatch, EntityWorkItem
from dtctl.serve import convert
from dtctl.serve.proto import orchestrator_service_pb2 as pb

_OPERATIONS = (MessageKind.CALL, MessageKind.SIGNAL)


class BadEntityResult(ValueError):
    """An ``EntityBatchResult`` that does not fit the batch it answers (nothing is applied)."""


@dataclass(frozen=True, slots=True)
class EntityEpisode:
    """A leased entity and its planned batch, kept until the SDK completes it."""

    item: EntityWorkItem
    plan: EntityBatchResult  # operations' outcomes are placeholders until the SDK's results fill them
    operations: tuple[EntityMessage, ...]  # the messages the SDK runs, in order

    @property
    def needs_sdk(self) -> bool:
        return bool(self.operations)


def plan(item: EntityWorkItem) -> EntityEpisode:
    """Which of ``item``'s messages run and what the locks do, without running any operation."""
    entity_id = EntityInstanceId(item.name, item.key)
    # With no entity given, every operation "fails" in the plan: its response is a placeholder, and
    # the state is left alone; both are replaced by the SDK's outcome.
    planned = run_entity_batch(None, entity_id, item.state, item.lock, item.messages, now=item.leased_at)
    by_id = {m.id: m for m in item.messages}
    operations = tuple(by_id[i] for i in planned.consumed if by_id[i].kind in _OPERATIONS)
    return EntityEpisode(item, planned, operations)


def own_batch(episode: EntityEpisode) -> EntityBatch:
    """The batch of an entity whose leased messages are all lock traffic: serve settles it itself."""
    assert not episode.needs_sdk
    return EntityBatch(episode.item, episode.plan)


def request(episode: EntityEpisode) -> pb.EntityBatchRequest:
    """The work item's ``entityRequest``: the entity, its state, the operations to run."""
    item = episode.item
    return pb.EntityBatchRequest(
        instanceId=item.entity_id,
        entityState=convert.text(item.state),
        operations=[
            pb.OperationRequest(operation=m.operation or "", requestId=str(m.id), input=convert.text(m.input))
            for m in episode.operations
        ],
    )


def settle(episode: EntityEpisode, result: pb.EntityBatchResult) -> EntityBatch:
    """The batch to commit for the SDK's ``result``; :class:`BadEntityResult` when it does not fit."""
    if result.HasField("failureDetails"):
        details = result.failureDetails
        raise BadEntityResult(f"the SDK failed the whole batch: {details.errorType}: {details.errorMessage}")
    if len(result.results) != len(episode.operations):
        raise BadEntityResult(
            f"{len(result.results)} operation result(s) for a batch of {len(episode.operations)} operation(s)"
        )
    outcomes = iter(
        _outcome(message, answer)
        for message, answer in zip(episode.operations, result.results, strict=True)
        if message.kind is MessageKind.CALL and message.sender_instance_id is not None
    )
    outgoing: list[Outgoing] = [
        _answered(out, next(outcomes)) if isinstance(out, OperationResponse) else out
        for out in episode.plan.outgoing
    ]
    outgoing.extend(_sent(action) for action in result.actions)
    state = convert.optional_text(result, "entityState")
    batch = replace(episode.plan, state=state or None, outgoing=tuple(outgoing))
    return EntityBatch(episode.item, batch)


def _answered(placeholder: OperationResponse, outcome: tuple[str | None, FailureDetails | None]) -> Outgoing:
    return replace(placeholder, result=outcome[0], failure=outcome[1])


def _outcome(message: EntityMessage, answer: pb.OperationResult) -> tuple[str | None, FailureDetails | None]:
    kind = answer.WhichOneof("resultType")
    if kind == "success":
        return convert.optional_text(answer.success, "result") or None, None  # "" is the SDK's "no result"
    if kind == "failure":
        return None, convert.failure_from_proto(answer.failure.failureDetails)
    raise BadEntityResult(f"the result of operation {message.operation!r} has neither success nor failure")


def _sent(action: pb.OperationAction) -> Outgoing:
    kind = action.WhichOneof("operationActionType")
    if kind == "sendSignal":
        signal = action.sendSignal
        return SendSignal(
            entity_id=_entity_id(signal.instanceId),
            operation=signal.name,
            input=convert.optional_text(signal, "input"),
            fire_at=convert.micros(signal.scheduledTime) if signal.HasField("scheduledTime") else None,
        )
    if kind == "startNewOrchestration":
        start = action.startNewOrchestration
        if not start.instanceId:
            raise BadEntityResult("an entity started an orchestration without an instance id")
        return StartOrchestration(
            name=start.name, instance_id=start.instanceId, input=convert.optional_text(start, "input")
        )
    raise BadEntityResult(f"dtctl serve does not support the entity action {kind or '(empty)'}")


def _entity_id(text: str) -> str:
    try:
        return str(EntityInstanceId.parse(text))
    except ValueError as error:
        raise BadEntityResult(str(error)) from None
