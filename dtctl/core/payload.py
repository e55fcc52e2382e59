"""The one place user payloads are encoded and decoded.

Payloads are JSON. Dataclass values travel as JSON objects and are rebuilt only from the *receiving*
function's type annotation: a type is never chosen from names carried in the data, and decoding never
imports anything.

A :class:`DataConverter` (the durabletask SDK's interface: ``serialize``, ``deserialize``, ``coerce``,
``can_reconstruct``) changes how values become that JSON and back, for types dtctl does not know
(pydantic models, ``Decimal``, ...). It is given to the app (``App(data_converter=...)``) and to the
client (``TaskHubClient(..., data_converter=...)``); every ``encode`` / ``decode`` takes it as
``converter``. What it produces must still be JSON (checked), and it is handed the receiving side's
type, never one named by the data. ``None`` means dtctl's own codec, the fast path.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from abc import ABC, abstractmethod
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


class DataConverter(ABC):
    """How payloads become JSON text and back: the seam for types dtctl's codec does not know.

    Implement ``serialize`` / ``deserialize`` / ``coerce`` (and ``can_reconstruct`` to receive type
    hints), delegating what you do not handle to :class:`JsonDataConverter`. Give the same converter
    to the app and to the client. It must be deterministic (the same value, the same text): replay
    compares what the code sends now with what history recorded.
    """

    @abstractmethod
    def serialize(self, value: Any) -> str | None:
        """``value`` as JSON text, or ``None`` for ``None``."""

    @abstractmethod
    def deserialize(self, data: str | None, target_type: type | None = None) -> Any:
        """JSON text (``None`` for no payload) as a Python value, shaped as ``target_type`` if given."""

    @abstractmethod
    def coerce(self, value: Any, target_type: type | None = None) -> Any:
        """An already-parsed JSON value shaped as ``target_type`` (entity state will use this)."""

    def can_reconstruct(self, target_type: Any) -> bool:
        """Whether ``deserialize`` should be given ``target_type`` (a function's annotation, a
        ``return_type=`` / ``data_type=``, a client's type hint). When False it gets ``None`` and the
        receiver gets plain JSON data."""
        return False


class JsonDataConverter(DataConverter):
    """dtctl's own codec as a converter: plain JSON, dataclasses rebuilt from the receiving type."""

    def serialize(self, value: Any) -> str | None:
        if value is None:
            return None
        return _to_json(value)

    def deserialize(self, data: str | None, target_type: type | None = None) -> Any:
        if data is None or data == "":
            return None
        return decode(data, target_type)

    def coerce(self, value: Any, target_type: type | None = None) -> Any:
        return convert(value, target_type)

    def can_reconstruct(self, target_type: Any) -> bool:
        return True  # convert() shapes what it knows (dataclasses) and passes anything else through


def encode(value: Any, *, what: str = "payload", converter: DataConverter | None = None) -> str | None:
    """Encode ``value`` as compact JSON; ``None`` stays ``None`` (nothing stored).

    Raises :class:`PayloadError` naming ``what`` and the offending type, or the size over the limit.
    """
    if value is None:
        return None
    if converter is not None:
        text = _serialize(converter, value, what)
        if text is None:
            return None
    else:
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


def _serialize(converter: DataConverter, value: Any, what: str) -> str | None:
    try:
        text = converter.serialize(value)
    except Exception as exc:
        raise PayloadError(
            f"{what} cannot be stored: {type(converter).__name__}.serialize failed: {exc}"
        ) from None
    if text is None:
        return None
    if not isinstance(text, str):
        raise PayloadError(
            f"{what}: {type(converter).__name__}.serialize returned a {type(text).__name__}, not str"
        )
    try:
        parse_json(text)  # JSON stays the only stored format, whatever the converter
    except json.JSONDecodeError as exc:
        raise PayloadError(
            f"{what}: {type(converter).__name__}.serialize did not produce JSON: {exc}"
        ) from None
    return text


def decode(text: str | None, type_hint: Any = None, *, converter: DataConverter | None = None) -> Any:
    """Decode JSON text; with a ``type_hint``, rebuild dataclasses (nested, in lists and dicts).

    With a ``converter``, the converter decodes (given ``type_hint`` if it can reconstruct it); any
    error it raises (a pydantic ``ValidationError``, say) becomes a :class:`PayloadError`.
    """
    if text is None:
        return None
    if converter is not None:
        return _deserialize(converter, text, type_hint)
    try:
        value = parse_json(text)
    except json.JSONDecodeError as exc:
        raise PayloadError(f"stored payload is not valid JSON: {exc}") from None
    if type_hint is None or type_hint is Any:
        return value
    return convert(value, type_hint)


def _deserialize(converter: DataConverter, text: str, type_hint: Any) -> Any:
    name = type(converter).__name__
    try:
        hint = type_hint if type_hint is not None and converter.can_reconstruct(type_hint) else None
        return converter.deserialize(text, hint)
    except PayloadError:
        raise
    except Exception as exc:
        raise PayloadError(f"stored payload could not be read by {name}: {exc}") from None


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
