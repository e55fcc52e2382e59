"""Orchestration versions: what a worker accepts, and how two versions compare (the durabletask SDK's model).

An instance carries an optional version string (set at start, by ``call_sub_orchestrator(version=)``
or ``continue_as_new(new_version=)``). A worker declares :class:`VersioningOptions`: its own version,
a match strategy (none, strict, current-or-older) and what to do with an instance it must not run
(reject: leave it for another worker; fail: fail the instance with a ``VersionMismatch``).

Versions compare as the SDK compares them: no version is older than any version; two versions that
parse as PEP 440 compare as such (``1.0 == 1.0.0 < 1.1rc1 < 1.1``); two that do not, as strings.
dtctl differs in one corner only: between a PEP 440 version and one that is not, every PEP 440 version
is the older (the SDK compares the two strings, an order that is not transitive and so cannot be
indexed). Local segments (``+abc``) compare as lower-case strings.

:func:`version_key` turns a version into a string whose plain (byte-wise) order is that order, so a
hub can store it next to the version and filter leases with ``=`` and ``<=`` on an index.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from dtctl.core.failure import FailureDetails

__all__ = [
    "VERSION_MISMATCH",
    "VersionFailureStrategy",
    "VersionMatchStrategy",
    "VersioningOptions",
    "compare_versions",
    "lease_bounds",
    "version_failure",
    "version_key",
]

VERSION_MISMATCH = "VersionMismatch"  # the error type of a failure strategy's failure, as in the SDK


class VersionMatchStrategy(Enum):
    """Which instance versions a worker runs (the SDK's names and values)."""

    NONE = 1  # any version
    STRICT = 2  # exactly the worker's version
    CURRENT_OR_OLDER = 3  # the worker's version or an older one

    @property
    def cli_name(self) -> str:
        return self.name.lower().replace("_", "-")


class VersionFailureStrategy(Enum):
    """What a worker does with an instance whose version it does not match."""

    REJECT = 1  # leave it for another worker (this worker never leases it)
    FAIL = 2  # fail the instance with a VersionMismatch failure

    @property
    def cli_name(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class VersioningOptions:
    """A worker's versioning (``dtctl.App(versioning=...)``, ``dtctl worker --version ...``).

    ``default_version`` is the version given to sub-orchestrations started without one. A match
    strategy of None means NONE, a failure strategy of None means REJECT.
    """

    version: str | None = None
    default_version: str | None = None
    match_strategy: VersionMatchStrategy | None = None
    failure_strategy: VersionFailureStrategy | None = None

    @property
    def match(self) -> VersionMatchStrategy:
        return self.match_strategy or VersionMatchStrategy.NONE

    @property
    def failure(self) -> VersionFailureStrategy:
        return self.failure_strategy or VersionFailureStrategy.REJECT

    def describe(self) -> dict[str, str | None]:
        """The options as plain data (``dtctl workers``, the worker's heartbeat row)."""
        return {
            "version": self.version,
            "version_match": self.match.cli_name,
            "version_failure": self.failure.cli_name,
        }


# PEP 440's public version scheme, spelled loosely as packaging accepts it (case-insensitive, a leading
# "v", separators between segments optional).
_PEP440 = re.compile(
    r"""^\s*v?
    (?:(?P<epoch>\d+)!)?
    (?P<release>\d+(?:\.\d+)*)
    (?:[-_.]?(?P<pre_l>alpha|a|beta|b|preview|pre|c|rc)[-_.]?(?P<pre_n>\d+)?)?
    (?:-(?P<post_n1>\d+)|[-_.]?(?P<post_l>post|rev|r)[-_.]?(?P<post_n2>\d+)?)?
    (?:[-_.]?(?P<dev_l>dev)[-_.]?(?P<dev_n>\d+)?)?
    (?:\+(?P<local>[a-z0-9]+(?:[-_.][a-z0-9]+)*))?
    \s*$""",
    re.VERBOSE | re.IGNORECASE,
)
_PRE = {"a": "a", "alpha": "a", "b": "b", "beta": "b", "c": "c", "rc": "c", "pre": "c", "preview": "c"}
# Markers that sort below / above any present value of a segment (packaging's -Infinity / Infinity).
_BELOW, _PRESENT, _ABOVE = "0", "1", "2"


def _num(text: str | None) -> str:
    """A non-negative integer whose string order is its numeric order: its digit count, then digits."""
    digits = str(int(text or "0"))
    return f"{len(digits):03d}{digits}"


def _pep440_key(m: re.Match[str]) -> str:
    release = [int(part) for part in m["release"].split(".")]
    while len(release) > 1 and release[-1] == 0:  # 1.0 == 1.0.0
        release.pop()
    parts = [_num(m["epoch"]), *(_PRESENT + _num(str(n)) for n in release), _BELOW]
    has_post = m["post_n1"] is not None or m["post_l"] is not None
    if m["pre_l"] is not None:
        parts.append(_PRESENT + _PRE[m["pre_l"].lower()] + _num(m["pre_n"]))
    elif not has_post and m["dev_l"] is not None:
        parts.append(_BELOW)  # 1.0.dev1 comes before 1.0a1
    else:
        parts.append(_ABOVE)
    parts.append(_PRESENT + _num(m["post_n1"] or m["post_n2"]) if has_post else _BELOW)
    parts.append(_PRESENT + _num(m["dev_n"]) if m["dev_l"] is not None else _ABOVE)
    parts.append(_PRESENT + m["local"].lower() if m["local"] is not None else _BELOW)
    return "".join(parts)


def version_key(version: str | None) -> str:
    """A string whose byte-wise order is the version order ("" for no version: older than any)."""
    if not version:
        return ""
    m = _PEP440.match(version)
    if m is None:
        return _ABOVE + version  # not PEP 440: after every PEP 440 version, among its kind as strings
    return _PRESENT + _pep440_key(m)


def compare_versions(source: str | None, other: str | None) -> int:
    """-1, 0 or 1 as ``source`` is older than, the same as, or newer than ``other``."""
    a, b = version_key(source), version_key(other)
    return (a > b) - (a < b)


def version_failure(options: VersioningOptions | None, version: str | None) -> FailureDetails | None:
    """Why a worker with ``options`` must not run an instance at ``version``, or None when it may."""
    if options is None:
        return None
    match = options.match
    if match is VersionMatchStrategy.NONE:
        return None
    order = compare_versions(version, options.version)
    if match is VersionMatchStrategy.STRICT and order != 0:
        message = (
            f"The orchestration version '{version or ''}' does not match "
            f"the worker version '{options.version or ''}'."
        )
    elif match is VersionMatchStrategy.CURRENT_OR_OLDER and order > 0:
        message = (
            f"The orchestration version '{version or ''}' is greater than "
            f"the worker version '{options.version or ''}'."
        )
    else:
        return None
    return FailureDetails(message=message, error_type=VERSION_MISMATCH)


def lease_bounds(options: VersioningOptions | None) -> tuple[str | None, str | None]:
    """The range of version keys a worker leases (None: unbounded on that side).

    A worker that fails mismatched instances leases every version (it has to take one to fail it);
    one that rejects them never leases them, so it does not keep taking and giving back the same work.
    """
    if options is None or options.failure is VersionFailureStrategy.FAIL:
        return None, None
    key = version_key(options.version)
    if options.match is VersionMatchStrategy.STRICT:
        return key, key
    if options.match is VersionMatchStrategy.CURRENT_OR_OLDER:
        return None, key
    return None, None


def parse_match(text: str) -> VersionMatchStrategy:
    """``none``, ``strict`` or ``current-or-older`` (the CLI's spelling)."""
    for strategy in VersionMatchStrategy:
        if strategy.cli_name == text.strip().lower().replace("_", "-"):
            return strategy
    raise ValueError(f"unknown version match strategy {text!r}; use none, strict or current-or-older")


def parse_failure(text: str) -> VersionFailureStrategy:
    """``reject`` or ``fail``."""
    for strategy in VersionFailureStrategy:
        if strategy.cli_name == text.strip().lower():
            return strategy
    raise ValueError(f"unknown version failure strategy {text!r}; use reject or fail")
