"""The Origin allow-list of the WebSocket endpoints (``/ws`` and ``/whiteboard/...``).

A browser always sends ``Origin`` on a WebSocket handshake (RFC 6455 section 4.1, item 8; the
Fetch standard), so a page of another site that opens a socket to liveclass is refused with 403
here, whatever token it holds. A handshake without ``Origin`` comes from a program (the Python SDK,
y-websocket on Node, locust bots), which could send any ``Origin`` it liked: refusing it would stop
honest tools and no attacker, so it is allowed and its token decides.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def normalize_origin(text: str) -> str:
    """``scheme://host[:port]`` in the form browsers send (RFC 6454 section 6.2): lower-case
    scheme and host, no default port, no path.

    Raises:
        ValueError: not an http(s) origin (a path, query, user info or another scheme).
    """
    url = urlsplit(text.strip())
    if url.scheme not in ("http", "https") or not url.hostname:
        raise ValueError(f"{text!r} is not an origin: use http(s)://host[:port]")
    if url.path not in ("", "/") or url.query or url.fragment or "@" in url.netloc:
        raise ValueError(f"{text!r} is not an origin: no path, query or user info")
    port = url.port  # raises ValueError for a bad port
    host = url.hostname
    shown = f"[{host}]" if ":" in host else host
    if port is None or port == _DEFAULT_PORTS[url.scheme]:
        return f"{url.scheme}://{shown}"
    return f"{url.scheme}://{shown}:{port}"


def loopback_origins(scheme: str, port: int) -> frozenset[str]:
    """The origins of this server's own port on the loopback names (``localhost``, 127.0.0.1,
    [::1]): a page the server itself serves there."""
    hosts = ("localhost", "127.0.0.1", "[::1]")
    return frozenset(normalize_origin(f"{scheme}://{host}:{port}") for host in hosts)


@dataclass(frozen=True, slots=True)
class OriginPolicy:
    """Which ``Origin`` headers a WebSocket handshake may carry.

    ``allowed`` holds normalized origins (:func:`normalize_origin`).
    """

    allowed: frozenset[str] = frozenset()

    def allows(self, origins: list[str]) -> bool:
        """Whether a handshake with these ``Origin`` header values is accepted: none at all (a
        program, not a browser), or exactly one that is on the list. ``null`` (a sandboxed frame,
        a file) is never on it."""
        if not origins:
            return True
        if len(origins) != 1:
            return False
        origin = origins[0].strip()
        if origin in self.allowed:
            return True
        try:
            return normalize_origin(origin) in self.allowed
        except ValueError:
            return False
