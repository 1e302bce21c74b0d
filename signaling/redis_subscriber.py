"""A sharded pub/sub subscriber for Redis Cluster that survives failovers and slot migrations.

One connection and one reader task per master that owns a subscribed channel's slot
(``SSUBSCRIBE``, Redis 7; https://redis.io/docs/latest/develop/interact/pubsub/#sharded-pubsub).
When a channel's subscription is lost (the connection drops, the node answers ``MOVED``, or the
server sends ``sunsubscribe`` because the slot migrated), the subscriber refreshes the slot map
and resubscribes with a backoff capped at ``backoff_cap_s``, then tells the channel's handler
that messages may have been missed, so it can gap-fill from the durable log. Pub/sub here is only
a wake-up; the stream is the truth. redis-py's own cluster pub/sub is not used: it did not
recover from failovers or migrations (../shared facts, redis-cluster.md).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from typing import Any, Protocol

from redis.asyncio.connection import Connection, SSLConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError, ResponseError

from .redis_cluster import Address, ClusterRouter, ClusterUnavailable, as_text

log = logging.getLogger(__name__)


class ChannelHandler(Protocol):
    def message(self, payload: bytes) -> None:
        """A message published on the channel (called on the event loop, in channel order)."""
        ...

    def resubscribed(self) -> None:
        """The subscription was lost and is back: messages in between may be missing."""
        ...


class _Shard:
    """One connection to one master and the channels it confirmed."""

    def __init__(self, owner: ShardedSubscriber, address: Address, conn: Connection) -> None:
        self.owner = owner
        self.address = address
        self.conn = conn
        self.channels: set[str] = set()
        #: Replies expected in order: (kind "s" or "u", channel, future).
        self.pending: deque[tuple[str, str, asyncio.Future[None]]] = deque()
        self.dead = False
        self.reader = asyncio.get_running_loop().create_task(self._read())

    async def request(self, kind: str, channel: str) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.dead:
            future.set_exception(ClusterUnavailable("connection lost"))
            return future
        self.pending.append((kind, channel, future))
        try:
            await self.conn.send_command("SSUBSCRIBE" if kind == "s" else "SUNSUBSCRIBE", channel)
        except (RedisError, OSError) as exc:
            self._die(exc)
        return future

    async def _read(self) -> None:
        try:
            while True:
                try:
                    reply = await self.conn.read_response(timeout=math.inf)
                except ResponseError as exc:  # MOVED (or another error) answering a request
                    if self.pending:
                        _, _, future = self.pending.popleft()
                        if not future.done():
                            future.set_exception(exc)
                    continue
                self._dispatch(reply)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the connection is gone: everything on it is lost
            self._die(exc)

    def _dispatch(self, reply: Any) -> None:
        kind = as_text(reply[0])
        channel = as_text(reply[1])
        if kind == "smessage":
            if channel in self.channels:
                self.owner._message(channel, reply[2])
        elif kind == "ssubscribe":
            self.channels.add(channel)
            self._answer("s", channel)
        elif kind == "sunsubscribe":
            self.channels.discard(channel)
            if self.pending and self.pending[0][:2] == ("u", channel):
                self._answer("u", channel)
            else:  # the server dropped it: the slot moved
                self.owner._lost(self, [channel], "the slot moved")

    def _answer(self, kind: str, channel: str) -> None:
        if self.pending and self.pending[0][:2] == (kind, channel):
            _, _, future = self.pending.popleft()
            if not future.done():
                future.set_result(None)

    def _die(self, exc: BaseException) -> None:
        if self.dead:
            return
        self.dead = True
        for _, _, future in self.pending:
            if not future.done():
                future.set_exception(ClusterUnavailable(f"connection lost: {exc}"))
        self.pending.clear()
        lost, self.channels = list(self.channels), set()
        self.owner._lost(self, lost, f"connection to {self.address[0]}:{self.address[1]} lost")
        asyncio.get_running_loop().create_task(self.conn.disconnect(nowait=True))

    async def close(self) -> None:
        self.dead = True
        self.reader.cancel()
        await self.conn.disconnect(nowait=True)


class ShardedSubscriber:
    """Subscribes channels on their slot owners and keeps them subscribed.

    Args:
        router: the slot map (shared with the commands).
        timeout_s: how long :meth:`subscribe` waits for the owner's confirmation.
        backoff_cap_s: the longest pause between resubscription rounds after a loss.
    """

    def __init__(
        self, router: ClusterRouter, *, timeout_s: float = 2.0, backoff_cap_s: float = 0.25
    ) -> None:
        self.router = router
        self.timeout_s = timeout_s
        self.backoff_cap_s = backoff_cap_s
        self._handlers: dict[str, ChannelHandler] = {}
        self._shards: dict[Address, _Shard] = {}
        self._connecting: dict[Address, asyncio.Future[_Shard]] = {}
        self._homeless: set[str] = set()
        self._repair: asyncio.Task[None] | None = None
        self._closed = False
        #: Shard connections lost with subscriptions on them, each followed by a resubscription
        #: (``liveclass_redis_reconnects_total``).
        self.reconnects = 0

    def ready(self) -> bool:
        """Until :meth:`close`. Channels waiting for their shard's failover are homed again by
        themselves, and the other shards' rooms are served meanwhile, so they do not make the
        node unready (the store's ``serving`` says when no shard serves at all)."""
        return not self._closed

    async def subscribe(self, channel: str, handler: ChannelHandler) -> None:
        """Subscribe and return once the slot's owner confirmed.

        Raises:
            ClusterUnavailable: the owner did not confirm within ``timeout_s``.
        """
        self._handlers[channel] = handler
        try:
            await asyncio.wait_for(self._home(channel, retry=True), self.timeout_s)
        except (TimeoutError, ClusterUnavailable, RedisError, OSError) as exc:
            if self._handlers.get(channel) is handler:
                del self._handlers[channel]
            await self._drop(channel)
            raise ClusterUnavailable(f"cannot subscribe {channel}: {exc}") from exc

    async def unsubscribe(self, channel: str, handler: ChannelHandler | None = None) -> None:
        """Stop (with ``handler``: only if it is still the channel's handler)."""
        if handler is not None and self._handlers.get(channel) is not handler:
            return
        self._handlers.pop(channel, None)
        self._homeless.discard(channel)
        await self._drop(channel)

    async def _drop(self, channel: str) -> None:
        for shard in list(self._shards.values()):
            if channel in self.channels_of(shard):
                await shard.request("u", channel)

    @staticmethod
    def channels_of(shard: _Shard) -> set[str]:
        return shard.channels | {c for kind, c, _ in shard.pending if kind == "s"}

    async def _home(self, channel: str, *, retry: bool) -> None:
        """Subscribe ``channel`` on its owner; on ``MOVED`` refresh the map and try again."""
        delay = 0.01
        while True:
            address = self.router.owner(channel)
            if address is None:
                await self.router.refresh()
                address = self.router.owner(channel)
                if address is None:
                    raise ClusterUnavailable(f"no master owns {channel}'s slot")
            try:
                shard = await self._shard(address)
                await (await shard.request("s", channel))
                return
            except (ResponseError, ClusterUnavailable, RedisError, OSError) as exc:
                if not retry:
                    raise
                log.debug("subscribing %s on %s: %s", channel, address, exc)
                try:
                    await self.router.refresh()
                except ClusterUnavailable:
                    pass
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.backoff_cap_s)

    async def _shard(self, address: Address) -> _Shard:
        shard = self._shards.get(address)
        if shard is not None and not shard.dead:
            return shard
        connecting = self._connecting.get(address)
        if connecting is not None:
            return await asyncio.shield(connecting)
        future: asyncio.Future[_Shard] = asyncio.get_running_loop().create_future()
        self._connecting[address] = future
        try:
            access = self.router.access
            conn = (SSLConnection if access.tls else Connection)(
                host=address[0],
                port=address[1],
                protocol=2,
                socket_connect_timeout=self.router.timeout_s,
                socket_timeout=None,
                retry_on_timeout=False,
                retry=Retry(NoBackoff(), 0),  # the resubscribe loop does the retrying
                **access.connection_kwargs(),
            )
            await conn.connect()
            shard = self._shards[address] = _Shard(self, address, conn)
            future.set_result(shard)
            return shard
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()
            raise
        finally:
            del self._connecting[address]

    # -- called by shards ----------------------------------------------------------------------

    def _message(self, channel: str, payload: bytes) -> None:
        handler = self._handlers.get(channel)
        if handler is not None:
            try:
                handler.message(payload)
            except Exception:
                log.exception("handler of %s failed", channel)

    def _lost(self, shard: _Shard, channels: list[str], why: str) -> None:
        if self._shards.get(shard.address) is shard and shard.dead:
            del self._shards[shard.address]
        lost = [c for c in channels if c in self._handlers]
        if not lost or self._closed:
            return
        log.warning("sharded subscription of %d channel(s) lost: %s", len(lost), why)
        self.reconnects += 1
        self._homeless.update(lost)
        if self._repair is None:
            self._repair = asyncio.get_running_loop().create_task(self._resubscribe())

    async def _resubscribe(self) -> None:
        """Resubscribe every homeless channel, backing off up to ``backoff_cap_s`` per round."""
        delay = 0.01
        try:
            while self._homeless and not self._closed:
                try:
                    await self.router.refresh()
                except ClusterUnavailable as exc:
                    log.debug("refresh: %s", exc)
                for channel in list(self._homeless):
                    handler = self._handlers.get(channel)
                    if handler is None:
                        self._homeless.discard(channel)
                        continue
                    try:
                        await asyncio.wait_for(self._home(channel, retry=False), self.timeout_s)
                    except (TimeoutError, ResponseError, ClusterUnavailable, RedisError, OSError):
                        continue
                    self._homeless.discard(channel)
                    try:
                        handler.resubscribed()
                    except Exception:
                        log.exception("handler of %s failed", channel)
                if self._homeless:
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self.backoff_cap_s)
        finally:
            self._repair = None
        if self._homeless and not self._closed:  # lost again while the last round finished
            self._repair = asyncio.get_running_loop().create_task(self._resubscribe())

    async def close(self) -> None:
        self._closed = True
        if self._repair is not None:
            self._repair.cancel()
        for shard in list(self._shards.values()):
            await shard.close()
        self._shards.clear()
        self._handlers.clear()
