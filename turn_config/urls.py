"""STUN and TURN URLs, the entries of an RTCIceServer's ``urls``.

Grammar: RFC 7064 section 3.1 (``stun:``, ``stuns:``) and RFC 7065 section 3.1 (``turn:``,
``turns:``)::

    url       = scheme ":" host [ ":" port ] [ "?transport=" ( "udp" / "tcp" ) ]
    scheme    = "stun" / "stuns" / "turn" / "turns"     ; transport only with turn / turns
    host      = hostname / IPv4 address / "[" IPv6 address "]"

There is no ``//`` after the scheme. Without a port, clients use 3478 (``stun``, ``turn``) or 5349
(``stuns``, ``turns``); without a transport, ``turn:`` is UDP and ``turns:`` is TLS over TCP.
``turns:...?transport=udp`` (TURN over DTLS) is refused: browsers do not implement it.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Literal

from turn_config.errors import InvalidServers

Scheme = Literal["stun", "stuns", "turn", "turns"]
#: How a client reaches the TURN server through this URL.
RelayTransport = Literal["udp", "tcp", "tls"]

DEFAULT_PORTS: dict[Scheme, int] = {"stun": 3478, "turn": 3478, "stuns": 5349, "turns": 5349}
_SCHEMES: dict[str, Scheme] = {scheme: scheme for scheme in DEFAULT_PORTS}

_URL = re.compile(
    r"(?P<scheme>[A-Za-z]+):(?P<host>\[[^\]]*\]|[^:?\[\]]*)"
    r"(?::(?P<port>[^?]*))?(?:\?(?P<query>.*))?",
    re.DOTALL,
)
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


@dataclass(frozen=True, slots=True)
class IceUrl:
    """One parsed STUN or TURN URL.

    Attributes:
        text: the URL handed to clients: as configured, with the scheme and the transport
            parameter in lower case.
        scheme: ``stun``, ``stuns``, ``turn`` or ``turns``.
        host: a hostname, IPv4 address or IPv6 address (without brackets).
        port: the port given, else the scheme's default (3478 or 5349).
        transport: ``udp`` or ``tcp`` when the URL says ``?transport=``, else None.
    """

    text: str
    scheme: Scheme
    host: str
    port: int
    transport: Literal["udp", "tcp"] | None

    @property
    def is_turn(self) -> bool:
        """A TURN URL (``turn:`` or ``turns:``), which takes a username and credential."""
        return self.scheme in ("turn", "turns")

    @property
    def relay_transport(self) -> RelayTransport:
        """How a client talks to the server: ``udp``, ``tcp`` or ``tls`` (``turns:``/``stuns:``)."""
        if self.scheme in ("turns", "stuns"):
            return "tls"
        return self.transport or "udp"


def parse_url(text: str) -> IceUrl:
    """Parse one STUN or TURN URL (grammar in the module docstring).

    Raises:
        InvalidServers: the URL does not follow the grammar; the message says what is wrong.
    """
    if "@" in text:
        raise InvalidServers(f"{text!r}: credentials do not go in the URL")
    match = _URL.fullmatch(text)
    scheme = _SCHEMES.get(match["scheme"].lower()) if match is not None else None
    if match is None or scheme is None:
        raise InvalidServers(
            f"{text!r} does not start with the scheme turn:, turns:, stun: or stuns: "
            "(e.g. turn:turn.example.org:3478)"
        )
    host = match["host"]
    if host.startswith("//"):
        raise InvalidServers(f"{text!r}: no '//' after {scheme}: (write {scheme}:host:port)")
    host = _check_host(text, host)
    port = DEFAULT_PORTS[scheme]
    if match["port"] is not None:
        if not match["port"].isascii() or not match["port"].isdigit():
            raise InvalidServers(f"{text!r}: the port must be a number")
        port = int(match["port"])
        if not 1 <= port <= 65535:
            raise InvalidServers(f"{text!r}: the port must be in 1..65535")
    transport: Literal["udp", "tcp"] | None = None
    if match["query"] is not None:
        if scheme in ("stun", "stuns"):
            raise InvalidServers(f"{text!r}: a {scheme}: URL takes no '?' parameters")
        query = match["query"].lower()
        if query == "transport=udp":
            transport = "udp"
        elif query == "transport=tcp":
            transport = "tcp"
        else:
            raise InvalidServers(
                f"{text!r}: the only parameter is ?transport=udp or ?transport=tcp"
            )
        if scheme == "turns" and transport == "udp":
            raise InvalidServers(
                f"{text!r}: TURN over DTLS is not implemented by browsers; use "
                f"turns:{match['host']}:{port}?transport=tcp"
            )
    normalized = f"{scheme}:{match['host']}"
    if match["port"] is not None:
        normalized += f":{port}"
    if transport is not None:
        normalized += f"?transport={transport}"
    return IceUrl(normalized, scheme, host, port, transport)


def _check_host(text: str, host: str) -> str:
    """The host without brackets, if it is a valid hostname, IPv4 or bracketed IPv6 address."""
    if not host:
        raise InvalidServers(f"{text!r}: the host is missing")
    if host.startswith("["):
        try:
            return str(ipaddress.IPv6Address(host[1:-1]))
        except ValueError:
            raise InvalidServers(f"{text!r}: {host} is not an IPv6 address") from None
    if re.fullmatch(r"[0-9.]+", host):
        try:
            return str(ipaddress.IPv4Address(host))
        except ValueError:
            raise InvalidServers(f"{text!r}: {host} is not an IPv4 address") from None
    name = host.removesuffix(".")
    if len(name) > 253 or not all(_LABEL.fullmatch(label) for label in name.split(".")):
        raise InvalidServers(f"{text!r}: {host!r} is not a hostname")
    return host
