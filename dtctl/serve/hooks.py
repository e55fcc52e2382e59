"""RPCs that arrive with a later issue, or never; each answers UNIMPLEMENTED with a message.

To implement one, replace its handler here; the servicer binds these by name, so nothing else changes.
Until then a request that needs a missing feature is refused before it changes anything.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn

import grpc


def _unimplemented(what: str) -> Callable[[Any, Any, grpc.ServicerContext], NoReturn]:
    message = f"dtctl serve does not implement {what} yet"

    def handler(self: Any, request: Any, context: grpc.ServicerContext) -> NoReturn:
        context.abort(grpc.StatusCode.UNIMPLEMENTED, message)
        raise AssertionError("unreachable: abort raises")

    handler.__doc__ = f"HOOK: {message}."
    return handler


# not planned: a hub is deleted with dtctl's own commands, never over the wire
delete_task_hub = _unimplemented("DeleteTaskHub (delete a hub with dtctl, not over gRPC)")
skip_graceful_terminations = _unimplemented("SkipGracefulOrchestrationTerminations")
