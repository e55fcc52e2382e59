"""Who may talk to the dashboard: Host checks (DNS rebinding), Origin checks and a CSRF token (actions).

Pure functions over header values, so they are easy to test; :mod:`dtctl.dashboard.app` applies them.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
import socket
from dataclasses import dataclass, field
from urllib.parse import urlsplit

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def is_loopback(host: str) -> bool:
    name = host.strip("[]").lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def is_wildcard(host: str) -> bool:
    return host.strip("[]") in ("0.0.0.0", "::", "")


def _split_host(value: str) -> tuple[str, int | None]:
    """``host[:port]`` (``[v6]:port`` too) -> (host lowercased without brackets, port)."""
    try:
        parts = urlsplit(f"//{value}")
        return (parts.hostname or "").lower(), parts.port
    except ValueError:
        return "", None


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class Guard:
    """The per-process CSRF token and the names this server answers to."""

    bind_host: str
    port: int
    token: str = field(default_factory=lambda: secrets.token_urlsafe(32))

    def host_allowed(self, host_header: str | None) -> bool:
        """A Host header naming this server: loopback names, the bound address, this machine's names,
        or any IP literal on a wildcard bind. A foreign DNS name (a rebinding attack) is refused."""
        if not host_header:
            return False
        name, port = _split_host(host_header)
        if not name or (port is not None and port != self.port):
            return False
        if is_loopback(name) or name == self.bind_host.strip("[]").lower():
            return True
        if is_loopback(self.bind_host):
            return False
        own = {socket.gethostname().lower(), socket.getfqdn().lower()}
        return name in own or (is_wildcard(self.bind_host) and _is_ip(name))

    def origin_allowed(self, origin: str | None, referer: str | None, host_header: str | None) -> bool:
        """A POST must come from a page of this server: its Origin (else Referer) names the Host."""
        source = origin if origin and origin != "null" else referer
        if not source or not host_header:
            return False
        parts = urlsplit(source)
        return parts.scheme in ("http", "https") and parts.netloc.lower() == host_header.lower()

    def token_ok(self, supplied: str | None) -> bool:
        return bool(supplied) and hmac.compare_digest(str(supplied), self.token)
