"""Tags: string labels on instances and activity calls (``tags={"tenant": "acme"}``, as in the SDK).

Instance tags are stored with the instance and can be filtered on (``dtctl list --tag k=v``); an
activity's tags are recorded with its ``task_scheduled`` history event. Both are small: a name, a value.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from dtctl.errors import UsageError

__all__ = ["MAX_TAGS", "MAX_TAG_NAME", "MAX_TAG_VALUE", "check_tags", "check_version", "parse_tag"]

MAX_TAGS = 64
MAX_TAG_NAME = 256
MAX_TAG_VALUE = 1024
MAX_VERSION = 256


def check_tags(tags: Mapping[str, str] | None) -> dict[str, str] | None:
    """Tags as a plain dict sorted by name, or None for none; a bad one raises UsageError."""
    if tags is None:
        return None
    if not isinstance(tags, Mapping):
        raise UsageError(f"tags must be a mapping of strings to strings, not {type(tags).__qualname__}")
    if len(tags) > MAX_TAGS:
        raise UsageError(f"at most {MAX_TAGS} tags, not {len(tags)}")
    for name, value in tags.items():
        if not isinstance(name, str) or not name or len(name) > MAX_TAG_NAME:
            raise UsageError(
                f"tag name {name!r} must be a non-empty string of at most {MAX_TAG_NAME} characters"
            )
        if not isinstance(value, str) or len(value) > MAX_TAG_VALUE:
            raise UsageError(
                f"tag {name!r}: the value must be a string of at most {MAX_TAG_VALUE} characters"
            )
    return dict(sorted(tags.items())) or None


def parse_tag(text: str) -> tuple[str, str]:
    """``name=value`` (the CLI's ``--tag``); the value may contain ``=``."""
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise UsageError(f"a tag is NAME=VALUE, not {text!r}")
    return name, value


def parse_tags(texts: Iterable[str]) -> dict[str, str] | None:
    """Repeated ``--tag name=value`` options as tags (a repeated name: the last value wins)."""
    found = dict(parse_tag(t) for t in texts)
    return check_tags(found) if found else None


def check_version(version: str | None) -> str | None:
    """A version string as stored ("" means none), or UsageError."""
    if version is None or version == "":
        return None
    if not isinstance(version, str) or len(version) > MAX_VERSION or not version.isprintable():
        raise UsageError(f"a version must be printable text of at most {MAX_VERSION} characters: {version!r}")
    return version
