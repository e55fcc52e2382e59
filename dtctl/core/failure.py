"""FailureDetails: what an activity, sub-orchestration or orchestrator failure looks like in history."""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from typing import Any


def qualified_name(cls: type) -> str:
    """``builtins.ValueError``, ``myapp.errors.Declined``: the form stored in ``error_type``."""
    return f"{cls.__module__}.{cls.__qualname__}"


@dataclass(frozen=True, slots=True)
class FailureDetails:
    message: str
    error_type: str
    stack_trace: str | None = None

    @classmethod
    def from_exception(cls, exc: BaseException) -> FailureDetails:
        trace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        return cls(message=str(exc), error_type=qualified_name(type(exc)), stack_trace=trace)

    def is_caused_by(self, error_type: str | type[BaseException]) -> bool:
        """True when the failure was raised as ``error_type`` or one of its subclasses.

        A string is compared with the stored fully-qualified name (a bare builtin name such as
        ``"ValueError"`` also matches). A class matches its own name or any name in its subclass
        tree that is already imported; nothing is ever imported from the stored name.
        """
        if isinstance(error_type, str):
            return self.error_type == error_type or self.error_type == f"builtins.{error_type}"
        return self.error_type in _names_of_tree(error_type)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"message": self.message, "error_type": self.error_type}
        if self.stack_trace is not None:
            out["stack_trace"] = self.stack_trace
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FailureDetails:
        return cls(
            message=str(data.get("message", "")),
            error_type=str(data.get("error_type", "builtins.Exception")),
            stack_trace=data.get("stack_trace"),
        )


def _names_of_tree(root: type) -> set[str]:
    names: set[str] = set()
    stack = [root]
    while stack:
        cls = stack.pop()
        name = qualified_name(cls)
        if name in names:
            continue
        names.add(name)
        stack.extend(cls.__subclasses__())
    return names
