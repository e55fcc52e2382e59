"""The embedded task hub: one SQLite file (DESIGN §6). :class:`SqliteTaskHub` is its front."""

from dtctl.hub.sqlite.hub import SqliteTaskHub

__all__ = ["SqliteTaskHub"]
