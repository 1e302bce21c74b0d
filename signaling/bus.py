"""The bus interface: wakes every node that has members in a room, and shares presence.

Adapters: :class:`LocalBus` (one process, the embedded default) and
:class:`signaling.redis_bus.RedisBus` (Redis Cluster sharded pub/sub). A delivery may repeat
records or skip some; the subscriber drops ids it has delivered and gap-fills from the store, so
the bus needs no delivery guarantee of its own. It only has to say when it may have dropped
something (:meth:`RoomSubscriber.missed`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from rooms import Participant, Record


class RoomSubscriber(Protocol):
    """What a node's room hub hears from the bus."""

    def deliver(self, records: Sequence[Record]) -> None:
        """Records appended to the room's log (by any node), in id order."""
        ...

    def missed(self) -> None:
        """Records may have been dropped (a subscription was lost and restored): read the store."""
        ...

    def presence(self, node: str, joined: Sequence[Participant], left: Sequence[str]) -> None:
        """Another node's members of the room changed (``left`` holds identities)."""
        ...

    def roster(self, node: str, members: Sequence[Participant]) -> None:
        """All of another node's members of the room, replacing what was known of that node
        (empty: the node left the room or died)."""
        ...


class Bus(Protocol):
    async def start(self) -> None:
        """Connect before the node serves.

        Raises:
            signaling.redis_cluster.ClusterUnavailable: the Redis adapter cannot reach the cluster.
        """
        ...

    async def subscribe(self, room_id: str, subscriber: RoomSubscriber) -> None:
        """Hear about ``room_id`` from now on (once per room per node).

        Raises:
            signaling.store.StoreUnavailable: the bus cannot subscribe now.
        """
        ...

    async def unsubscribe(self, room_id: str) -> None: ...

    async def publish(self, room_id: str, records: Sequence[Record]) -> None:
        """Announce records this node just appended to the room's log."""
        ...

    async def announce(
        self, room_id: str, joined: Sequence[Participant], left: Sequence[Participant]
    ) -> None:
        """Tell the other nodes who came online and who went offline here (coalesced by the
        caller)."""
        ...

    def ready(self) -> bool: ...

    async def close(self) -> None: ...


class LocalBus:
    """In-process :class:`Bus`: one subscriber per room, called synchronously; no other nodes."""

    def __init__(self) -> None:
        self._subscribers: dict[str, RoomSubscriber] = {}

    async def start(self) -> None:
        return None

    async def subscribe(self, room_id: str, subscriber: RoomSubscriber) -> None:
        self._subscribers[room_id] = subscriber

    async def unsubscribe(self, room_id: str) -> None:
        self._subscribers.pop(room_id, None)

    async def publish(self, room_id: str, records: Sequence[Record]) -> None:
        subscriber = self._subscribers.get(room_id)
        if subscriber is not None:
            subscriber.deliver(records)

    async def announce(
        self, room_id: str, joined: Sequence[Participant], left: Sequence[Participant]
    ) -> None:
        return None

    def ready(self) -> bool:
        return True

    async def close(self) -> None:
        self._subscribers.clear()
