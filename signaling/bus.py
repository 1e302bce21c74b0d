"""The bus interface: wakes every node that has members in a room when its log grows.

Adapters: :class:`LocalBus` (one process, the embedded default); a Redis Cluster sharded pub/sub
adapter comes with scale-out. A delivery may repeat records or skip some; the subscriber drops ids
it has delivered and gap-fills from the store, so the bus needs no delivery guarantee of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from rooms import Record

Deliver = Callable[[str, Sequence[Record]], None]


class Bus(Protocol):
    async def subscribe(self, room_id: str, deliver: Deliver) -> None:
        """Call ``deliver(room_id, records)`` for records appended to ``room_id`` from now on."""
        ...

    async def unsubscribe(self, room_id: str) -> None: ...

    async def publish(self, room_id: str, records: Sequence[Record]) -> None:
        """Announce records that were just appended to the room's log."""
        ...

    def ready(self) -> bool: ...

    async def close(self) -> None: ...


class LocalBus:
    """In-process :class:`Bus`: one subscriber per room, called synchronously."""

    def __init__(self) -> None:
        self._subscribers: dict[str, Deliver] = {}

    async def subscribe(self, room_id: str, deliver: Deliver) -> None:
        self._subscribers[room_id] = deliver

    async def unsubscribe(self, room_id: str) -> None:
        self._subscribers.pop(room_id, None)

    async def publish(self, room_id: str, records: Sequence[Record]) -> None:
        deliver = self._subscribers.get(room_id)
        if deliver is not None:
            deliver(room_id, records)

    def ready(self) -> bool:
        return True

    async def close(self) -> None:
        self._subscribers.clear()
