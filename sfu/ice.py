"""Which local addresses the SFU offers as ICE host candidates (mediasoup's ``listenIps``).

aioice gathers a host candidate on every address of every interface except 127.0.0.1. A server
wants the opposite control: offer the addresses the operator names (a public interface, or only
loopback in tests), so :func:`use_host_addresses` replaces aioice's address discovery in this
process. ``None`` restores the default (every address but 127.0.0.1).

Hooks aioice's module-level ``get_host_addresses`` (aioice is pinned); :func:`use_host_addresses`
checks the name exists.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

import aioice.ice

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
