"""What the global options decided, shared by every command through typer's context."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dtctl.client import TaskHubClient

DEFAULT_HUB = "./taskhub.db"


@dataclass
class CliState:
    hub: str = DEFAULT_HUB
    json: bool = False
    verbose: bool = False
    synchronous: str = "full"
    _client: TaskHubClient | None = field(default=None, repr=False)

    @property
    def hub_shown(self) -> str:
        """The hub as it may be printed: a PostgreSQL URL without its password."""
        from dtctl.admin import redact

        return redact(self.hub)

    def client(self) -> TaskHubClient:
        if self._client is None:
            from dtctl.admin import open_hub
            from dtctl.client import TaskHubClient

            self._client = TaskHubClient(open_hub(self.hub, synchronous=self.synchronous))
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def hub_from_environment() -> str:
    return os.environ.get("DTCTL_HUB") or DEFAULT_HUB


# The state of the command being run; set by the root callback.
current = CliState()
