"""The rules for instance ids and orchestration, activity and event names, checked where they enter.

An id or a name is printed in tables, logs and JSON, stored as a key and typed on command lines, so
text that a terminal would act on (a newline, an escape sequence, a bidi override) is refused, as is
text too long to be a key. New instance ids also follow the Durable Task SDKs (Durable Functions
refuses an instance id longer than 256 characters, containing ``/``, ``\\``, ``#``, ``?`` or a control
character, or starting with ``@``, which it reserves for entities), so an id valid here is valid there.

Ids that name an existing instance (``terminate ID``, ``status ID``) are checked more loosely: a
sub-orchestration's generated id (``parent:0001``) may be longer than 256 characters, and an id stored
by an earlier version must stay reachable. Pure: no I/O.
"""

from __future__ import annotations

import unicodedata

from dtctl.errors import InvalidName

MAX_INSTANCE_ID = 256  # characters of a new instance id (the Durable Functions limit)
MAX_INSTANCE_REF = 1024  # characters of an id naming an existing instance (generated child ids grow)
MAX_NAME = 256  # characters of an orchestration, activity or event name
RESERVED_ID_CHARACTERS = "/\\#?"
RESERVED_ID_START = "@"

# Unicode categories a terminal acts on instead of printing: C0/C1 controls, line and paragraph
# separators, unpaired surrogates (bytes that were not UTF-8 on a command line).
_CONTROL_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})
# Format characters that reorder the text around them when printed (bidi embeddings and isolates).
_BIDI_CONTROLS = frozenset(chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F))


def new_instance_id(value: str) -> str:
    """Check an id for a new instance; returns it unchanged or raises :class:`InvalidName`."""
    what = "instance id"
    _check_text(value, what, MAX_INSTANCE_ID)
    bad = next((c for c in value if c in RESERVED_ID_CHARACTERS), None)
    if bad is not None:
        raise InvalidName(
            f"{what} {_shown(value)} contains {bad!r}; "
            f"ids must not contain {' '.join(RESERVED_ID_CHARACTERS)} (reserved by the Durable Task SDKs)"
        )
    if value.startswith(RESERVED_ID_START):
        raise InvalidName(f"{what} {_shown(value)} starts with '@' (reserved for entity ids)")
    return value


def instance_ref(value: str) -> str:
    """Check an id that names an existing instance (looser than :func:`new_instance_id`)."""
    _check_text(value, "instance id", MAX_INSTANCE_REF)
    return value


def task_name(value: str, what: str = "name") -> str:
    """Check an orchestration, activity or event name; ``what`` says which in the message."""
    _check_text(value, what, MAX_NAME)
    return value


def _check_text(value: str, what: str, limit: int) -> None:
    if not isinstance(value, str):
        raise InvalidName(f"{what} must be text, not {type(value).__name__}")
    if not value:
        raise InvalidName(f"{what} must not be empty")
    if len(value) > limit:
        raise InvalidName(f"{what} {_shown(value)} is {len(value)} characters long (at most {limit})")
    for position, char in enumerate(value):
        if char in _BIDI_CONTROLS or unicodedata.category(char) in _CONTROL_CATEGORIES:
            raise InvalidName(
                f"{what} {_shown(value)} contains the control character U+{ord(char):04X} "
                f"at position {position}"
            )
    if value != value.strip():
        raise InvalidName(f"{what} {_shown(value)} starts or ends with white space")


def _shown(value: str) -> str:
    """The value as a one-line repr, cut short: a message must stay one line and readable."""
    text = ascii(value) if len(value) <= 60 else ascii(value[:57]) + "..."
    return text
