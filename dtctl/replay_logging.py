"""The replay-safe logger: a :class:`logging.LoggerAdapter` that is silent while an orchestrator replays.

It lives outside :mod:`dtctl.core` because :mod:`logging` loads :mod:`threading`, which the replay engine
keeps out of its imports; ``ctx.create_replay_safe_logger(logger)`` imports this module on first use.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, MutableMapping
from typing import Any

__all__ = ["ReplaySafeLogger"]


class ReplaySafeLogger(logging.LoggerAdapter[logging.Logger]):
    """Passes records to ``logger`` only while the orchestrator is not replaying history.

    Every logging method of the adapter goes through :meth:`isEnabledFor`, which says no during replay,
    so a line is logged once per real step of the orchestration however often it is replayed, and
    arguments are not even formatted meanwhile. Obtain one with
    ``ctx.create_replay_safe_logger(logger)``, as in the durabletask SDK.
    """

    def __init__(self, logger: logging.Logger, is_replaying: Callable[[], bool]) -> None:
        super().__init__(logger, {})
        self._is_replaying = is_replaying

    def isEnabledFor(self, level: int) -> bool:
        if self._is_replaying():
            return False
        return self.logger.isEnabledFor(level)

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        # The caller's ``extra`` is kept (the base adapter would replace it with its own empty one).
        return msg, kwargs
