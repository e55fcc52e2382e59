"""The embedded task hub: one SQLite file. :class:`SqliteTaskHub` is its front."""

from dtctl.hub.sqlite.hub import SqliteTaskHub

__all__ = ["SqliteTaskHub"]
