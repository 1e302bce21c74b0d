"""At most N connections per identity and room on a node, the newest winning.

A phone that reconnects opens its new connection before the server has noticed the old one died;
refusing the new one would lock the student out, so the oldest goes instead
(``connection_replaced``, close 4410; docs/protocol.md, "Connections per identity"). The table
holds only live connections: an entry leaves with its connection.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class ConnectionCap(Generic[T]):
    """Connections (of any kind ``T``) held per key, oldest first, at most ``limit`` per key.

    Args:
        limit: connections per key; below 1 counts as 1.
    """

    __slots__ = ("_held", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        self._held: dict[Hashable, list[T]] = {}

    def hold(self, key: Hashable, connection: T) -> list[T]:
        """Count ``connection`` under ``key``; returns the oldest connections of that key that it
        pushes past the limit (they are no longer counted: the caller closes them)."""
        held = self._held.setdefault(key, [])
        held.append(connection)
        excess = len(held) - self.limit
        if excess <= 0:
            return []
        replaced = held[:excess]
        del held[:excess]
        return replaced

    def release(self, key: Hashable, connection: T) -> None:
        """``connection`` closed; the key leaves the table with its last connection."""
        held = self._held.get(key)
        if held is None:
            return
        if connection in held:
            held.remove(connection)
        if not held:
            del self._held[key]

    def __len__(self) -> int:
        """The number of keys held."""
        return len(self._held)
