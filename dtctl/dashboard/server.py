"""Serving the dashboard: uvicorn on the chosen address, the URL registered for ``dtctl status``."""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Callable, Iterator

import uvicorn

from dtctl.dashboard import registry
from dtctl.dashboard.app import DashboardConfig, create_app
from dtctl.dashboard.security import is_loopback

NON_LOOPBACK_WARNING = (
    "WARNING: the dashboard listens on {host}, not on a loopback address: anyone who can reach this "
    "port can read every instance's inputs and outputs{actions}. There is no login. Bind 127.0.0.1 "
    "and use an SSH tunnel unless this network is trusted."
)


def base_url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else ("localhost" if host == "::" else host)
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}"


class _Server(uvicorn.Server):
    """uvicorn's server, except that a signal only stops it: uvicorn re-raises the signal after its
    shutdown, which would end the process before the dashboard's registration file is removed."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def serve(config: DashboardConfig, say: Callable[[str], None]) -> None:
    """Serve until interrupted; ``say`` prints a line for people (stderr)."""
    if not is_loopback(config.host):
        actions = " and, with --allow-actions, terminate and purge them" if config.allow_actions else ""
        sys.stderr.write("\n" + NON_LOOPBACK_WARNING.format(host=config.host, actions=actions) + "\n\n")
        sys.stderr.flush()
    app, dashboard = create_app(config)
    url = base_url(config.host, config.port)
    with dashboard.pool.borrow() as client:
        where = registry.registration_path(client.hub.watch_path(), client.hub.url)
    server = _Server(
        uvicorn.Config(
            app,
            host=config.host,
            port=config.port,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=2,
            lifespan="on",
        )
    )
    registry.register(where, url)
    mode = "actions allowed" if config.allow_actions else "read-only"
    say(f"dtctl dashboard on {url} ({mode}) for hub {dashboard.hub_shown}; Ctrl-C stops it")
    try:
        server.run()
    finally:
        registry.unregister(where)
