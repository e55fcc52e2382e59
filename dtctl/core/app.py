"""The registry: which orchestrators and activities an app offers, under which names."""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, overload

from dtctl.core import names, payload
from dtctl.core.entity import EntityDefinition
from dtctl.core.versioning import VersioningOptions
from dtctl.errors import RegistrationError

F = TypeVar("F", bound=Callable[..., Any])


def function_name(fn: Callable[..., Any] | str) -> str:
    """The registered name of a function (or a name given as a string). Lambdas have none."""
    if isinstance(fn, str):
        if not fn:
            raise RegistrationError("a name must not be empty")
        return fn
    registered = getattr(fn, "__dtctl_name__", None)
    if isinstance(registered, str):
        return registered
    name = getattr(fn, "__name__", None)
    if not name or name == "<lambda>":
        raise RegistrationError("a lambda cannot be registered or called by name; define a named function")
    return str(name)


@dataclass(frozen=True, slots=True)
class OrchestratorDefinition:
    name: str
    fn: Callable[..., Any]
    input_type: Any = None
    output_type: Any = None
    converter: payload.DataConverter | None = None  # the app's; None: dtctl's JSON codec

    def decode_input(self, text: str | None) -> Any:
        return payload.decode(text, self.input_type, converter=self.converter)


@dataclass(frozen=True, slots=True)
class ActivityDefinition:
    name: str
    fn: Callable[..., Any]
    is_async: bool = False
    input_type: Any = None
    output_type: Any = None
    converter: payload.DataConverter | None = None

    def decode_input(self, text: str | None) -> Any:
        return payload.decode(text, self.input_type, converter=self.converter)

    def encode_output(self, value: Any) -> str | None:
        return payload.encode(value, what=f"the result of activity {self.name!r}", converter=self.converter)


@dataclass
class App:
    """Orchestrators and activities, registered by decorator::

    app = dtctl.App()

    @app.activity
    def say_hello(ctx, city: str) -> str: ...

    @app.orchestrator(name="greet")
    def hello(ctx, _): ...

    ``data_converter`` (a :class:`~dtctl.core.payload.DataConverter`) encodes and decodes every payload
    of the app's orchestrators and activities; give the client the same one. Set it when making the
    app: functions registered before a change keep the converter they were registered with.
    """

    orchestrators: dict[str, OrchestratorDefinition] = field(default_factory=dict)
    activities: dict[str, ActivityDefinition] = field(default_factory=dict)
    entities: dict[str, EntityDefinition] = field(default_factory=dict)  # by lower-cased name
    middleware: list[Any] = field(default_factory=list)
    data_converter: payload.DataConverter | None = None
    # The worker's versioning (the SDK's VersioningOptions); `dtctl worker --version ...` overrides it.
    versioning: VersioningOptions | None = None

    @overload
    def orchestrator(self, fn: F, /) -> F: ...
    @overload
    def orchestrator(self, fn: None = None, /, *, name: str | None = None) -> Callable[[F], F]: ...
    def orchestrator(self, fn: Any = None, /, *, name: str | None = None) -> Any:
        def register(f: F) -> F:
            self.add_orchestrator(f, name=name)
            return f

        return register(fn) if fn is not None else register

    @overload
    def activity(self, fn: F, /) -> F: ...
    @overload
    def activity(self, fn: None = None, /, *, name: str | None = None) -> Callable[[F], F]: ...
    def activity(self, fn: Any = None, /, *, name: str | None = None) -> Any:
        def register(f: F) -> F:
            self.add_activity(f, name=name)
            return f

        return register(fn) if fn is not None else register

    def add_orchestrator(self, fn: Callable[..., Any], *, name: str | None = None) -> OrchestratorDefinition:
        _check_callable(fn, "orchestrator")
        key = name or function_name(fn)
        self._refuse_duplicate(key, self.orchestrators, "orchestrator")
        definition = OrchestratorDefinition(
            key,
            fn,
            input_type=payload.input_hint(fn),
            output_type=payload.return_hint(fn),
            converter=self.data_converter,
        )
        self.orchestrators[key] = definition
        _remember_name(fn, key)
        return definition

    def add_activity(self, fn: Callable[..., Any], *, name: str | None = None) -> ActivityDefinition:
        _check_callable(fn, "activity")
        key = name or function_name(fn)
        self._refuse_duplicate(key, self.activities, "activity")
        definition = ActivityDefinition(
            key,
            fn,
            is_async=inspect.iscoroutinefunction(fn),
            input_type=payload.input_hint(fn),
            output_type=payload.return_hint(fn),
            converter=self.data_converter,
        )
        self.activities[key] = definition
        _remember_name(fn, key)
        return definition

    def use_versioning(self, options: VersioningOptions) -> None:
        """Set the versioning of workers running this app (the SDK's ``worker.use_versioning``)."""
        self.versioning = options

    @overload
    def entity(self, fn: F, /) -> F: ...
    @overload
    def entity(self, fn: None = None, /, *, name: str | None = None) -> Callable[[F], F]: ...
    def entity(self, fn: Any = None, /, *, name: str | None = None) -> Any:
        """Register an entity: a function ``fn(ctx, input)`` or a ``DurableEntity`` subclass."""

        def register(f: F) -> F:
            self.add_entity(f, name=name)
            return f

        return register(fn) if fn is not None else register

    def add_entity(self, fn: Callable[..., Any], *, name: str | None = None) -> EntityDefinition:
        """Register an entity under ``name`` (default: its function or class name); names are
        case-insensitive, as in entity ids."""
        definition = EntityDefinition.of(fn, name)
        if definition.name in self.entities:
            raise RegistrationError(f"an entity named {definition.name!r} is already registered")
        self.entities[definition.name] = definition
        return definition

    def get_entity(self, name: str) -> EntityDefinition | None:
        return self.entities.get(name.lower())

    def use(self, middleware: Any) -> Any:
        """Add a middleware around episodes and activity executions (see :mod:`dtctl.runtime`)."""
        self.middleware.append(middleware)
        return middleware

    def get_orchestrator(self, name: str) -> OrchestratorDefinition | None:
        return self.orchestrators.get(name)

    def get_activity(self, name: str) -> ActivityDefinition | None:
        return self.activities.get(name)

    @staticmethod
    def _refuse_duplicate(key: str, table: dict[str, Any], what: str) -> None:
        names.task_name(key, f"{what} name")
        if key in table:
            raise RegistrationError(f"an {what} named {key!r} is already registered")


def _check_callable(fn: Any, what: str) -> None:
    if not callable(fn):
        raise RegistrationError(f"an {what} must be a function, not {type(fn).__name__}")
    function_name(fn)  # refuses lambdas


def _remember_name(fn: Callable[..., Any], name: str) -> None:
    # ``call_activity(fn)`` must find the name a function was registered under, even an explicit one.
    if getattr(fn, "__name__", None) != name:
        with contextlib.suppress(AttributeError, TypeError):
            fn.__dtctl_name__ = name  # type: ignore[attr-defined]
