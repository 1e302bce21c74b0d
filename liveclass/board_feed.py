"""The board feed on Redis Cluster: each board's wake channel through the node's sharded
subscriber (the one the room bus uses: one connection per master for both)."""

from __future__ import annotations

from signaling.redis_cluster import ClusterUnavailable
from signaling.redis_log import BoardWake, decode_wake
from signaling.redis_subscriber import ShardedSubscriber
from whiteboard import BoardFeedHandler, BoardStoreUnavailable
from whiteboard.redis_store import wake_channel


class _BoardChannel:
    def __init__(self, handler: BoardFeedHandler) -> None:
        self.handler = handler

    def message(self, payload: bytes) -> None:
        try:
            wake = decode_wake(payload)
        except ValueError:
            wake = None
        if not isinstance(wake, BoardWake):
            self.handler.resubscribed()  # unreadable: read the store instead
            return
        self.handler.updates(wake.first_seq, wake.updates)

    def resubscribed(self) -> None:
        self.handler.resubscribed()


class RedisBoardFeed:
    """:class:`whiteboard.BoardFeed` over :class:`signaling.redis_subscriber.ShardedSubscriber`."""

    def __init__(self, subscriber: ShardedSubscriber) -> None:
        self.subscriber = subscriber
        self._channels: dict[tuple[str, str], _BoardChannel] = {}

    async def subscribe(self, room_id: str, board: str, handler: BoardFeedHandler) -> None:
        channel = _BoardChannel(handler)
        self._channels[(room_id, board)] = channel
        try:
            await self.subscriber.subscribe(wake_channel(room_id, board), channel)
        except ClusterUnavailable as exc:
            if self._channels.get((room_id, board)) is channel:
                del self._channels[(room_id, board)]
            raise BoardStoreUnavailable(f"cannot follow board {room_id}/{board}: {exc}") from exc

    async def unsubscribe(self, room_id: str, board: str, handler: BoardFeedHandler) -> None:
        channel = self._channels.get((room_id, board))
        if channel is None or channel.handler is not handler:
            return
        del self._channels[(room_id, board)]
        await self.subscriber.unsubscribe(wake_channel(room_id, board), channel)
