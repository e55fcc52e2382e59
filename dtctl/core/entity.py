"""The entity authoring API: what an entity operation sees (:class:`EntityContext`), class entities
(:class:`DurableEntity`), and how a registered entity runs one operation (:class:`EntityDefinition`).

An entity is a function ``fn(ctx, input)`` that looks at ``ctx.operation``, or a :class:`DurableEntity`
subclass with one method per operation (``delete`` is built in). Its state is JSON, held encoded and
decoded on every ``get_state``: a value read and changed in place is not saved until it is passed to
``set_state``, and a failed operation's changes are dropped by restoring the encoded text. Pure.
"""

from __future__ import annotations

import inspect
import typing
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar, overload

from dtctl.core import names, payload
from dtctl.core.entity_id import EntityInstanceId
from dtctl.core.times import UUID_NAMESPACE, to_epoch_us
from dtctl.errors import RegistrationError

__all__ = ["DurableEntity", "EntityContext", "EntityDefinition", "SentSignal", "StartedOrchestration"]

TState = TypeVar("TState")
_ONE_US = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class SentSignal:
    entity_id: str
    operation: str
    input: str | None
    fire_at: int | None


@dataclass(frozen=True, slots=True)
class StartedOrchestration:
    name: str
    instance_id: str
    input: str | None


class EntityContext:
    """What an entity operation receives: the entity, the operation, its state, and what it may send."""

    __slots__ = ("_entity_id", "_now_us", "_operation", "_orchestration_id", "_seed", "_sent", "_state")

    def __init__(
        self,
        entity_id: EntityInstanceId,
        operation: str,
        state: str | None,
        *,
        orchestration_id: str | None = None,
        now_us: int = 0,
        seed: str = "",
    ) -> None:
        self._entity_id = entity_id
        self._operation = operation
        self._state = state  # encoded JSON; None: no state
        self._orchestration_id = orchestration_id
        self._now_us = now_us
        self._seed = seed  # what makes the ids of orchestrations this operation starts the same on a re-run
        self._sent: list[SentSignal | StartedOrchestration] = []

    @property
    def entity_id(self) -> EntityInstanceId:
        return self._entity_id

    @property
    def operation(self) -> str:
        return self._operation

    @property
    def orchestration_id(self) -> str:
        """The orchestration that called or signalled this operation ("" for a client or an entity)."""
        return self._orchestration_id or ""

    @overload
    def get_state(self, intended_type: type[TState], default: TState) -> TState: ...
    @overload
    def get_state(self, intended_type: type[TState]) -> TState | None: ...
    @overload
    def get_state(self, intended_type: None = None, default: Any = None) -> Any: ...
    def get_state(self, intended_type: Any = None, default: Any = None) -> Any:
        """The state (a fresh copy), shaped to ``intended_type``; ``default`` when there is none."""
        if self._state is None:
            return default
        value = payload.decode(self._state, intended_type)
        return value if intended_type is None else _coerce(value, intended_type)

    def set_state(self, new_state: Any) -> None:
        """Replace the state; ``None`` deletes it. Refused at once when it is not JSON."""
        self._state = payload.encode(new_state, what=f"the state of entity {str(self._entity_id)!r}")

    def delete_state(self) -> None:
        self._state = None

    def has_state(self) -> bool:
        return self._state is not None

    def signal_entity(
        self,
        entity_instance_id: EntityInstanceId | str,
        operation: str,
        input: Any = None,
        signal_time: datetime | timedelta | None = None,
    ) -> None:
        """Send ``operation`` to an entity (this one too) once this operation succeeds."""
        target = str(EntityInstanceId.of(entity_instance_id))
        data = payload.encode(input, what=f"the input of operation {operation!r} on entity {target!r}")
        fire_at: int | None = None
        if isinstance(signal_time, timedelta):
            fire_at = self._now_us + signal_time // _ONE_US
        elif isinstance(signal_time, datetime):
            fire_at = to_epoch_us(signal_time)
        elif signal_time is not None:
            raise TypeError(
                f"signal_time must be a datetime or a timedelta, not {type(signal_time).__qualname__}"
            )
        self._sent.append(SentSignal(target, operation, data, fire_at))

    def schedule_new_orchestration(
        self, orchestration_name: str, input: Any = None, instance_id: str | None = None
    ) -> str:
        """Start an orchestration once this operation succeeds; returns its instance id (derived from
        the message being processed when not given, so a re-run starts the same instance)."""
        names.task_name(orchestration_name, "orchestration name")
        if instance_id is None:
            seed = f"{self._entity_id}_{self._seed}_{len(self._sent)}"
            instance_id = uuid.uuid5(UUID_NAMESPACE, seed).hex
        else:
            names.new_instance_id(instance_id)
        data = payload.encode(input, what=f"the input of orchestration {orchestration_name!r}")
        self._sent.append(StartedOrchestration(orchestration_name, instance_id, data))
        return instance_id

    # --- the executor's half ----------------------------------------------------------------------------

    def encoded_state(self) -> str | None:
        return self._state

    def sent(self) -> list[SentSignal | StartedOrchestration]:
        """What the operation sent, in order."""
        return list(self._sent)


_SCALARS = (int, float, str, bool)


def _coerce(value: Any, intended_type: Any) -> Any:
    """The SDK's state coercion: a scalar type constructs from the value, a class with ``from_json``
    builds from it; a value that cannot be coerced raises TypeError."""
    if not isinstance(intended_type, type) or isinstance(value, intended_type):
        return value
    hook = getattr(intended_type, "from_json", None)
    if callable(hook):
        return hook(value)
    if intended_type in _SCALARS:
        try:
            return intended_type(value)
        except (TypeError, ValueError) as error:
            message = f"the entity state {value!r} is not a {intended_type.__name__}: {error}"
            raise TypeError(message) from None
    return value


class DurableEntity:
    """Base of class entities: each public method is an operation, called with the operation's input
    (or with none, when the method takes none and none was sent). ``delete`` removes the state."""

    entity_context: EntityContext

    @overload
    def get_state(self, intended_type: type[TState], default: TState) -> TState: ...
    @overload
    def get_state(self, intended_type: type[TState]) -> TState | None: ...
    @overload
    def get_state(self, intended_type: None = None, default: Any = None) -> Any: ...
    def get_state(self, intended_type: Any = None, default: Any = None) -> Any:
        return self.entity_context.get_state(intended_type, default)

    def set_state(self, state: Any) -> None:
        self.entity_context.set_state(state)

    def signal_entity(
        self,
        entity_instance_id: EntityInstanceId | str,
        operation: str,
        input: Any = None,
        signal_time: datetime | timedelta | None = None,
    ) -> None:
        self.entity_context.signal_entity(entity_instance_id, operation, input, signal_time)

    def schedule_new_orchestration(
        self, orchestration_name: str, input: Any = None, instance_id: str | None = None
    ) -> str:
        return self.entity_context.schedule_new_orchestration(
            orchestration_name, input, instance_id=instance_id
        )

    def delete(self, input: Any = None) -> None:
        self.entity_context.delete_state()


# Names on DurableEntity that are helpers, not operations (``delete`` is an operation).
_NOT_OPERATIONS = frozenset({"get_state", "set_state", "signal_entity", "schedule_new_orchestration"})


@dataclass(frozen=True, slots=True)
class _Method:
    name: str
    takes_input: bool  # a parameter without a default: always called with the input
    input_type: Any


@dataclass(slots=True)
class EntityDefinition:
    """A registered entity: ``name`` is lower-cased (entity names are case-insensitive)."""

    name: str
    fn: Callable[..., Any]
    input_type: Any = None
    _methods: dict[str, _Method | None] = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, fn: Callable[..., Any], name: str | None = None) -> EntityDefinition:
        if not callable(fn):
            raise RegistrationError(
                f"an entity must be a function or a DurableEntity class, not {type(fn).__name__}"
            )
        if inspect.iscoroutinefunction(fn):
            raise RegistrationError("an entity must be a plain function (def), not async def")
        key = (name or entity_name(fn)).lower()
        names.task_name(key, "entity name")
        try:
            EntityInstanceId.validate_entity_name(key)
        except ValueError as error:
            raise RegistrationError(str(error)) from None
        is_class = isinstance(fn, type)
        if is_class and not issubclass(fn, DurableEntity):  # type: ignore[arg-type]
            raise RegistrationError(f"an entity class must subclass DurableEntity: {fn.__qualname__}")
        return cls(key, fn, None if is_class else payload.input_hint(fn))

    @property
    def is_class(self) -> bool:
        return isinstance(self.fn, type)

    def run(self, ctx: EntityContext, encoded_input: str | None) -> Any:
        """Run one operation; returns its result (not encoded). Raises what the operation raises."""
        if not self.is_class:
            return self.fn(ctx, payload.decode(encoded_input, self.input_type))
        method = self._method(ctx.operation)
        if method is None:
            raise AttributeError(f"entity {str(ctx.entity_id)!r} has no operation {ctx.operation!r}")
        instance = self.fn()
        instance.entity_context = ctx
        bound = getattr(instance, method.name)
        value = payload.decode(encoded_input, method.input_type)
        if method.takes_input or value is not None:
            return bound(value)
        return bound()

    def _method(self, operation: str) -> _Method | None:
        if operation in self._methods:
            return self._methods[operation]
        found = _find_method(self.fn, operation)
        if len(self._methods) < 1024:  # operation names come from senders: keep the cache bounded
            self._methods[operation] = found
        return found


def _find_method(cls: Any, operation: str) -> _Method | None:
    """The public method that implements ``operation`` (an exact name first, then ignoring case)."""
    candidates = [operation] + [n for n in dir(cls) if n.lower() == operation.lower() and n != operation]
    for name in candidates:
        if name.startswith("_") or name in _NOT_OPERATIONS:
            continue
        attribute = getattr(cls, name, None)
        if not inspect.isfunction(attribute):
            continue
        parameters = list(inspect.signature(attribute).parameters.values())[1:]  # after self
        plain = [p for p in parameters if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        takes_input = any(p.default is p.empty for p in plain)
        hint = _hints(attribute).get(plain[0].name) if plain else None
        return _Method(name, takes_input, hint)
    return None


def _hints(fn: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn)
    except Exception:
        return {}


def entity_name(fn: Callable[..., Any]) -> str:
    """The name an entity is registered under unless one is given: its ``__durable_entity_name__``, or
    its class or function name."""
    given = getattr(fn, "__durable_entity_name__", None)
    if isinstance(given, str):
        return given
    name = getattr(fn, "__name__", None)
    if not name or name == "<lambda>":
        raise RegistrationError("a lambda cannot be registered as an entity; define a named function")
    return str(name)
