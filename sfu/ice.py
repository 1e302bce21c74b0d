"""The SFU's ICE: which local addresses it offers as host candidates (mediasoup's ``listenIps``),
and the client candidates it never uses.

**Checks are answered, never started.** A public SFU is normally ICE-lite (RFC 8445 section 2.5;
mediasoup is): it answers connectivity checks and sends only to addresses that sent to it. aioice
has no lite mode, so the SFU keeps every candidate a client names away from it
(:func:`without_candidates` for the SDP; trickled ones are checked and dropped): with no remote
candidate, aioice pairs only the peer-reflexive candidates it learns from the client's own
authenticated checks (RFC 8445 section 7.3.1.3) and its only outgoing checks are the triggered
checks back to those addresses (section 7.3.1.4). A client cannot make the SFU send STUN to
another address, resolve an mDNS name or probe a link-local one (docs/decisions/0010).
:func:`limit_remote_addresses` bounds how many addresses one connection answers (a client could
otherwise send checks from any number of ports, or spoof their source, and have each one
answered and checked back).

aioice gathers a host candidate on every address of every interface except 127.0.0.1. A server
wants the opposite control: offer the addresses the operator names (a public interface, or only
loopback in tests), so :func:`use_host_addresses` replaces aioice's address discovery in this
process. ``None`` restores the default (every address but 127.0.0.1).

:func:`announce` rewrites the host candidates of the SFU's SDP to an announced address
(mediasoup's ``announcedIp``), for a server behind 1:1 NAT or listening on ``0.0.0.0``.

Hooks aioice's module-level ``get_host_addresses`` (aioice is pinned); :func:`use_host_addresses`
checks the name exists.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Sequence
from typing import Any

import aioice.ice

log = logging.getLogger(__name__)

#: Remote addresses (peer-reflexive candidates) one ICE connection answers at most by default.
MAX_REMOTE_ADDRESSES = 8

_default = aioice.ice.get_host_addresses


def use_host_addresses(addresses: Sequence[str] | None) -> None:
    """Gather host candidates only on ``addresses`` from now on in this process.

    Raises:
        ValueError: an address is not an IP address, or the list is empty.
        RuntimeError: aioice has no ``get_host_addresses`` (not the pinned version).
    """
    if not callable(getattr(aioice.ice, "get_host_addresses", None)):
        raise RuntimeError("aioice.ice.get_host_addresses is gone: not the pinned aioice")
    if addresses is None:
        aioice.ice.get_host_addresses = _default
        return
    chosen = [str(ipaddress.ip_address(a)) for a in addresses]
    if not chosen:
        raise ValueError("at least one address to gather ICE candidates on")

    def get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [a for a in chosen if (use_ipv4 and ":" not in a) or (use_ipv6 and ":" in a)]

    aioice.ice.get_host_addresses = get_host_addresses


_HOST_CANDIDATE = re.compile(
    r"^(a=candidate:\S+ \d+ \S+ \d+ )(\S+)( \d+ typ host\b.*)$", re.MULTILINE | re.IGNORECASE
)
_CONNECTION = re.compile(r"^c=IN IP[46] (\S+)(\r?)$", re.MULTILINE)


def announce(sdp: str, address: str | None) -> str:
    """Put ``address`` (mediasoup's ``announcedIp``: the public address of a server behind 1:1
    NAT, or the one address to reach it by when it listens on ``0.0.0.0``) in place of the
    gathered address of every host candidate (RFC 8839 section 5.1) and of every ``c=`` line that
    named one. Server-reflexive and relay candidates are left as they are; ``None`` changes
    nothing.

    Raises:
        ValueError: ``address`` is not an IP address.
    """
    if address is None:
        return sdp
    announced = str(ipaddress.ip_address(address))
    family = "IP6" if ":" in announced else "IP4"
    gathered: set[str] = set()

    def host(match: re.Match[str]) -> str:
        gathered.add(match.group(2))
        return f"{match.group(1)}{announced}{match.group(3)}"

    sdp = _HOST_CANDIDATE.sub(host, sdp)

    def connection(match: re.Match[str]) -> str:
        if match.group(1) not in gathered:
            return match.group(0)
        return f"c=IN {family} {announced}{match.group(2)}"

    return _CONNECTION.sub(connection, sdp)


_REMOTE_CANDIDATE = re.compile(r"^a=(?:candidate:|end-of-candidates)[^\n]*(?:\n|\Z)", re.MULTILINE)


def without_candidates(sdp: str) -> str:
    """``sdp`` (a client's offer or answer) without its ``a=candidate`` lines (RFC 8839 section
    5.1) and ``a=end-of-candidates`` lines (RFC 8840): what the SFU's ICE agent is given, so it
    learns the client's addresses only from the checks the client sends (see the module)."""
    return _REMOTE_CANDIDATE.sub("", sdp)


def limit_remote_addresses(connection: aioice.Connection, limit: int) -> None:
    """Answer connectivity checks (STUN Binding requests, RFC 8445 section 7.3) from at most
    ``limit`` remote addresses on ``connection``: a request from another address is dropped
    unanswered, so it creates no peer-reflexive candidate, no pair and no triggered check.
    Idempotent. A client needs one address per connection (two with a relay as well).

    Hooks the instance's ``request_received`` (aioice is pinned).

    Raises:
        RuntimeError: aioice's Connection has no ``request_received`` (not the pinned aioice).
    """
    if getattr(connection, "_lc_limited", False):
        return
    answer = getattr(connection, "request_received", None)
    if not callable(answer):
        raise RuntimeError("aioice Connection.request_received is gone: not the pinned aioice")
    admitted: set[tuple[str, int]] = set()

    def request_received(message: Any, addr: tuple[str, int], protocol: Any) -> None:
        key = (addr[0], addr[1])
        if key not in admitted:
            if len(admitted) >= limit:
                log.debug("sfu: ignored a check from %s:%s (%d addresses)", *key, limit)
                return
            admitted.add(key)
        answer(message, addr, protocol)

    connection.request_received = request_received  # type: ignore[method-assign]
    connection._lc_limited = True  # type: ignore[attr-defined]
