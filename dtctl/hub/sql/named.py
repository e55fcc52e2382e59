"""Named SQL blocks: each backend keeps its statements in a ``.sql`` file, read once at import.

A block starts with a header line ``-- name_of_statement --``; everything up to the next header is
that statement. Whole-line ``--`` comments inside a block explain the statement to its reader and are
left out of the text sent to the server, so the text (the key of the drivers' statement caches) does
not change when a comment does. ``{fragment}`` markers are filled from the fragments the backend
passes, such as the list of live statuses generated from :class:`~dtctl.core.status.RuntimeStatus`; a
marker nobody fills is an error at import, not a broken statement at run time.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from importlib import resources

_HEADER = re.compile(r"^--\s+([a-z][a-z0-9_]*)\s+--\s*$")
_FRAGMENT = re.compile(r"\{([a-z_]+)\}")


class NamedQueries:
    """The statements of one ``.sql`` file; :meth:`take` each one, then :meth:`check_all_taken`."""

    def __init__(self, source: str, blocks: Mapping[str, str]) -> None:
        self.source = source
        self._blocks = dict(blocks)
        self._taken: set[str] = set()

    def take(self, name: str) -> str:
        try:
            text = self._blocks[name]
        except KeyError:
            raise LookupError(f"no statement {name!r} in {self.source}") from None
        self._taken.add(name)
        return text

    def names(self) -> list[str]:
        return list(self._blocks)

    def check_all_taken(self) -> None:
        """A block nobody takes is dead SQL (or a misspelt name): refuse it at import."""
        unused = [name for name in self._blocks if name not in self._taken]
        if unused:
            raise LookupError(f"statements in {self.source} that no module uses: {', '.join(unused)}")


def parse_blocks(text: str, source: str, fragments: Mapping[str, str]) -> dict[str, str]:
    blocks: dict[str, list[str]] = {}
    current: list[str] | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            name = header.group(1)
            if name in blocks:
                raise ValueError(f"{source}:{number}: statement {name!r} is defined twice")
            current = blocks[name] = []
        elif line.lstrip().startswith("--") or (current is None and not line.strip()):
            continue
        elif current is None:
            raise ValueError(f"{source}:{number}: SQL before the first '-- name --' header")
        else:
            current.append(line)
    return {name: _fill("\n".join(lines).strip(), name, source, fragments) for name, lines in blocks.items()}


def _fill(sql: str, name: str, source: str, fragments: Mapping[str, str]) -> str:
    if not sql:
        raise ValueError(f"{source}: statement {name!r} is empty")

    def fragment(match: re.Match[str]) -> str:
        try:
            return fragments[match.group(1)]
        except KeyError:
            raise ValueError(f"{source}: statement {name!r} uses unknown fragment {match.group(0)}") from None

    return _FRAGMENT.sub(fragment, sql)


def load_queries(package: str, resource: str, fragments: Mapping[str, str] | None = None) -> NamedQueries:
    """The named blocks of ``resource`` (a file shipped in ``package``)."""
    text = resources.files(package).joinpath(resource).read_text(encoding="utf-8")
    source = f"{package}/{resource}"
    return NamedQueries(source, parse_blocks(text, source, fragments or {}))
