"""The one place user payloads are encoded and decoded.

Payloads are JSON. Dataclass values travel as JSON objects and are rebuilt only from the *receiving*
function's type annotation: a type is never chosen from names carried in the data, and decoding never
imports anything.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Callable
from typing import Any

from dtctl.errors import PayloadError

DEFAULT_MAX_PAYLOAD_BYTES = 1024 * 1024
_max_payload_bytes = DEFAULT_MAX_PAYLOAD_BYTES


def set_max_payload_bytes(limit: int) -> None:
    """Change the process-wide payload size limit (bytes of encoded JSON)."""
    global _max_payload_bytes
    if limit < 1:
        raise ValueError("the payload limit must be at least 1 byte")
    _max_payload_bytes = limit


def max_payload_bytes() -> int:
    return _max_payload_bytes


def _default(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, (set, frozenset)):
        raise TypeError(f"a {type(value).__name__} is not JSON; pass a list")
    kind = type(value)
    raise TypeError(f"object of type {kind.__module__}.{kind.__qualname__} is not JSON serializable")


# Built once: json.dumps with options builds an encoder per call, which dominated replay profiles.
_ENCODER = json.JSONEncoder(default=_default, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
_quote = json.encoder.encode_basestring  # how that encoder writes strings (ensure_ascii=False)
_scan_once: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def _to_json(value: Any) -> str:
    kind = type(value)
    if kind is str:
        return _quote(value)
    if kind is int:
        return int.__repr__(value)
    return _ENCODER.encode(value)


def parse_json(text: str) -> Any:
    """``json.loads`` for ``str``, faster on compact texts (payloads, history rows).

    Raises ``json.JSONDecodeError`` like ``json.loads``.
    """
    # The scanner alone is several times faster than json.loads on the small compact texts history
    # holds; anything it does not consume whole (whitespace, garbage) goes through json.loads.
    try:
        value, end = _scan_once(text, 0)
    except StopIteration:
        return json.loads(text)
    if end != len(text):
        return json.loads(text)
    return value


def encode(value: Any, *, what: str = "payload") -> str | None:
    """Encode ``value`` as compact JSON; ``None`` stays ``None`` (nothing stored).

    Raises :class:`PayloadError` naming ``what`` and the offending type, or the size over the limit.
    """
    if value is None:
        return None
    try:
        text = _to_json(value)
    except (TypeError, ValueError) as exc:
        raise PayloadError(f"{what} cannot be stored as JSON: {exc}") from None
    # A character is at most 4 bytes of UTF-8: only texts that could be over the limit get measured.
    size = len(text.encode("utf-8")) if len(text) * 4 > _max_payload_bytes else len(text)
    if size > _max_payload_bytes:
        raise PayloadError(
            f"{what} is {size:,} bytes of JSON, over the limit of {_max_payload_bytes:,} bytes",
            hint="pass a reference (a path or URL) instead of the data, or raise the limit",
        )
    return text


def decode(text: str | None, type_hint: Any = None) -> Any:
    """Decode JSON text; with a ``type_hint``, rebuild dataclasses (nested, in lists and dicts)."""
    if text is None:
        return None
    try:
        value = parse_json(text)
    except json.JSONDecodeError as exc:
        raise PayloadError(f"stored payload is not valid JSON: {exc}") from None
    if type_hint is None or type_hint is Any:
        return value
    return convert(value, type_hint)


def convert(value: Any, hint: Any) -> Any:
    """Shape plain JSON data into ``hint`` where it names dataclasses; other values pass through."""
    if value is None or hint is None or hint is Any:
        return value
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _to_dataclass(value, hint) if isinstance(value, dict) else value
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (list, tuple, set, frozenset):
        if isinstance(value, list) and args:
            item_hint = args[0]
            items = [convert(v, item_hint) for v in value]
            return tuple(items) if origin is tuple else items
        return value
    if origin is dict and isinstance(value, dict) and len(args) == 2:
        return {k: convert(v, args[1]) for k, v in value.items()}
    if origin in (typing.Union, types.UnionType):
        return _convert_to_member(value, args)
    return value


def _convert_to_member(value: Any, members: tuple[Any, ...]) -> Any:
    """A union: the first member that is a dataclass (for an object) or a list/dict type shapes it."""
    for member in members:
        if member is type(None):
            continue
        if isinstance(member, type) and dataclasses.is_dataclass(member) and isinstance(value, dict):
            return _to_dataclass(value, member)
        if typing.get_origin(member) in (list, dict) and isinstance(value, (list, dict)):
            return convert(value, member)
    return value


def _to_dataclass(data: dict[str, Any], cls: type) -> Any:
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # unresolvable forward references: fall back to raw field values
        hints = {}
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    kwargs = {k: convert(v, hints.get(k)) for k, v in data.items() if k in names}
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise PayloadError(f"cannot build {cls.__qualname__} from the payload: {exc}") from None


def input_hint(fn: Callable[..., Any]) -> Any:
    """The annotation of a registered function's second parameter (its input), if any."""
    hints = _hints(fn)
    params = list(_parameters(fn))
    if len(params) < 2:
        return None
    return hints.get(params[1])


def return_hint(fn: Callable[..., Any]) -> Any:
    hint = _hints(fn).get("return")
    origin = typing.get_origin(hint)
    # A generator orchestrator's return type is the third argument of Generator[Y, S, R].
    if origin is not None and getattr(origin, "__name__", "") in ("Generator", "Iterator"):
        args = typing.get_args(hint)
        return args[2] if len(args) == 3 else None
    return hint


def _hints(fn: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn)
    except Exception:
        return {}


def _parameters(fn: Callable[..., Any]) -> list[str]:
    code = getattr(fn, "__code__", None)
    if code is None:
        return []
    return list(code.co_varnames[: code.co_argcount])
