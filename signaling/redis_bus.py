"""The bus on Redis Cluster: room wake-ups over sharded pub/sub and presence with heartbeats.

Each node subscribes once per room it has members in, on ``room:{<id>}:wake`` (the channel the
append script publishes each append's records to, see :mod:`signaling.redis_store`), through
its own :class:`~signaling.redis_subscriber.ShardedSubscriber`. A lost and restored subscription
makes the room's hub gap-fill from the stream.

Presence lives under the room's hash tag too:

- ``room:{<id>}:nodes``: a sorted set, node id -> the time (ms, Redis server clock) its
  presence in the room expires; every node refreshes its own every ``ttl / 3``;
- ``room:{<id>}:members:<node>``: a hash, identity -> the participant (msgpack) for each member
  connected to that node.

Each change is one script that updates the node's hash and publishes the delta on the wake
channel. On each heartbeat a node also sweeps the room: a node whose time expired (it died
without leaving) is removed and its members' departure published, so ghosts leave every roster
within ``ttl`` plus one heartbeat.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgpack
from redis.exceptions import RedisError

from rooms import Participant, Record, event_from_data

from .bus import RoomSubscriber
from .redis_cluster import ClusterRouter, ClusterUnavailable
from .redis_store import WAKE_EVENTS, WAKE_PRESENCE, wake_channel
from .redis_subscriber import ShardedSubscriber
from .store import StoreUnavailable

log = logging.getLogger(__name__)

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

#: KEYS: nodes, this node's members, wake. ARGV: node, ttl ms, payload, joined count,
#: identity/participant pairs, then identities that left.
ANNOUNCE_SCRIPT = (
    _NOW
    + """
local ttl = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
redis.call('PEXPIRE', KEYS[1], ttl * 20)
local i = 5
for k = 1, tonumber(ARGV[4]) do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
  i = i + 2
end
for k = i, #ARGV do redis.call('HDEL', KEYS[2], ARGV[k]) end
redis.call('PEXPIRE', KEYS[2], ttl * 20)
redis.call('SPUBLISH', KEYS[3], ARGV[3])
return 1
"""
)

#: KEYS: nodes, wake. ARGV: node (or '' for none), ttl ms, members key prefix.
#: Refreshes the node's time and removes expired nodes, publishing their members' departure.
HEARTBEAT_SCRIPT = (
    _NOW
    + """
local ttl = tonumber(ARGV[2])
if ARGV[1] ~= '' then
  redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ttl * 20)
  redis.call('PEXPIRE', ARGV[3] .. ARGV[1], ttl * 20)
end
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
for _, node in ipairs(dead) do
  local key = ARGV[3] .. node
  local gone = redis.call('HKEYS', key)
  redis.call('DEL', key)
  redis.call('ZREM', KEYS[1], node)
  redis.call('SPUBLISH', KEYS[2], cmsgpack.pack({1, node, {}, gone}))
end
return #dead
"""
)

#: KEYS: nodes. ARGV: this node, members key prefix. Every other live node and its members.
ROSTERS_SCRIPT = (
    _NOW
    + """
local out = {}
for _, node in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')) do
  if node ~= ARGV[1] then
    table.insert(out, node)
    table.insert(out, redis.call('HGETALL', ARGV[2] .. node))
  end
end
return out
"""
)

#: KEYS: nodes, this node's members, wake. ARGV: node. Leaves the room at once.
LEAVE_SCRIPT = """
local gone = redis.call('HKEYS', KEYS[2])
redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[1], ARGV[1])
if #gone > 0 then redis.call('SPUBLISH', KEYS[3], cmsgpack.pack({1, ARGV[1], {}, gone})) end
return #gone
"""


def nodes_key(room_id: str) -> str:
    return f"room:{{{room_id}}}:nodes"


def members_prefix(room_id: str) -> str:
    return f"room:{{{room_id}}}:members:"


@dataclass(frozen=True, slots=True)
class Wake:
    """A decoded wake-up: records appended, or one node's presence delta."""

    records: list[Record]
    node: str = ""
    joined: tuple[Participant, ...] = ()
    left: tuple[str, ...] = ()


def decode_wake(payload: bytes) -> Wake:
    """Decode a wake-up message of ``room:{<id>}:wake``.

    Shapes (msgpack arrays): ``[0, first_id, ts, [[type, data], ...]]`` for appended events
    (``data`` is the event's msgpack map), ``[1, node, [participant map, ...], [identity, ...]]``
    for a node's presence delta.

    Raises:
        ValueError: not one of these shapes.
    """
    try:
        message = msgpack.unpackb(payload)
        kind = message[0]
        if kind == WAKE_EVENTS:
            _, first, ts, entries = message
            return Wake(
                [
                    Record(first + i, ts, event_from_data(type_, msgpack.unpackb(data)))
                    for i, (type_, data) in enumerate(entries)
                ]
            )
        if kind == WAKE_PRESENCE:
            _, node, joined, left = message
            return Wake(
                [],
                node if isinstance(node, str) else node.decode(),
                tuple(Participant.from_wire(p) for p in joined or ()),
                tuple(i if isinstance(i, str) else i.decode() for i in left or ()),
            )
    except (ValueError, TypeError, KeyError, IndexError, msgpack.UnpackException) as exc:
        raise ValueError(f"not a wake-up message: {exc}") from exc
    raise ValueError(f"unknown wake-up kind {kind!r}")


class _RoomChannel:
    """Feeds one room's wake channel to its hub."""

    def __init__(self, bus: RedisBus, room_id: str, subscriber: RoomSubscriber) -> None:
        self.bus = bus
        self.room_id = room_id
        self.subscriber = subscriber

    def message(self, payload: bytes) -> None:
        try:
            wake = decode_wake(payload)
        except ValueError as exc:
            log.warning("room %s: %s", self.room_id, exc)
            self.subscriber.missed()
            return
        if wake.records:
            self.subscriber.deliver(wake.records)
        elif wake.node and wake.node != self.bus.node_id:
            self.subscriber.presence(wake.node, wake.joined, wake.left)

    def resubscribed(self) -> None:
        self.subscriber.missed()
        self.bus.reload_rosters(self.room_id)


class RedisBus:
    """:class:`signaling.bus.Bus` on a Redis Cluster.

    Args:
        router: the slot map shared with the store.
        node_id: this node's name in presence (default: random per process, so a restarted
            node never inherits a dead one's entries).
        presence_ttl_ms: a node that has not refreshed its presence for this long is dead and
            its members leave the rosters.
    """

    def __init__(
        self,
        router: ClusterRouter,
        *,
        node_id: str | None = None,
        presence_ttl_ms: int = 3000,
        subscriber: ShardedSubscriber | None = None,
    ) -> None:
        self.router = router
        self.node_id = node_id or uuid.uuid4().hex[:12]
        self.presence_ttl_ms = presence_ttl_ms
        self.subscriber = subscriber or ShardedSubscriber(router)
        self._rooms: dict[str, _RoomChannel] = {}
        self._heartbeat: asyncio.Task[None] | None = None
        self._closed = False

    async def start(self) -> None:
        """Learn the cluster and start the heartbeat.

        Raises:
            ClusterUnavailable: the cluster cannot be reached.
        """
        await self.router.start()
        self._heartbeat = asyncio.get_running_loop().create_task(self._beat())

    async def subscribe(self, room_id: str, subscriber: RoomSubscriber) -> None:
        channel = _RoomChannel(self, room_id, subscriber)
        self._rooms[room_id] = channel
        try:
            await self.subscriber.subscribe(wake_channel(room_id), channel)
            await self._load_rosters(room_id)
        except ClusterUnavailable as exc:
            self._rooms.pop(room_id, None)
            raise StoreUnavailable(f"cannot follow room {room_id}: {exc}") from exc

    async def unsubscribe(self, room_id: str) -> None:
        if self._rooms.pop(room_id, None) is None:
            return
        await self.subscriber.unsubscribe(wake_channel(room_id))
        await self._leave(room_id)

    async def publish(self, room_id: str, records: Sequence[Record]) -> None:
        return None  # the append script published them already

    async def announce(
        self, room_id: str, joined: Sequence[Participant], left: Sequence[Participant]
    ) -> None:
        payload = msgpack.packb(
            [WAKE_PRESENCE, self.node_id, [p.to_wire() for p in joined], [p.identity for p in left]]
        )
        args: list[Any] = [self.node_id, self.presence_ttl_ms, payload, len(joined)]
        for p in joined:
            args += [p.identity, msgpack.packb(p.to_wire())]
        args += [p.identity for p in left]
        keys = [nodes_key(room_id), members_prefix(room_id) + self.node_id, wake_channel(room_id)]
        await self._eval(room_id, ANNOUNCE_SCRIPT, keys, args)

    def reload_rosters(self, room_id: str) -> None:
        task = asyncio.get_running_loop().create_task(self._load_rosters(room_id))
        task.add_done_callback(_log_failure)

    async def _load_rosters(self, room_id: str) -> None:
        reply = await self._eval(
            room_id, ROSTERS_SCRIPT, [nodes_key(room_id)], [self.node_id, members_prefix(room_id)]
        )
        channel = self._rooms.get(room_id)
        if channel is None:
            return
        rosters: dict[str, list[Participant]] = {}
        for i in range(0, len(reply), 2):
            node = reply[i].decode() if isinstance(reply[i], bytes) else str(reply[i])
            flat = reply[i + 1]
            people = []
            for j in range(1, len(flat), 2):
                try:
                    people.append(Participant.from_wire(msgpack.unpackb(flat[j])))
                except (ValueError, msgpack.UnpackException) as exc:
                    log.warning("room %s: a bad presence entry of node %s: %s", room_id, node, exc)
            rosters[node] = people
        channel.subscriber.rosters(rosters)

    async def _leave(self, room_id: str) -> None:
        keys = [nodes_key(room_id), members_prefix(room_id) + self.node_id, wake_channel(room_id)]
        try:
            await self._eval(room_id, LEAVE_SCRIPT, keys, [self.node_id])
        except StoreUnavailable as exc:
            log.warning("room %s: leaving presence failed (it expires): %s", room_id, exc)

    async def _eval(self, room_id: str, script: str, keys: list[str], args: list[Any]) -> Any:
        try:
            replies = await self.router.run(
                keys[0], lambda pipe: pipe.eval(script, len(keys), *keys, *args)
            )
        except (ClusterUnavailable, RedisError) as exc:
            raise StoreUnavailable(f"redis presence failed: {exc}") from exc
        return replies[0]

    async def _beat(self) -> None:
        """Every ``ttl / 3``: re-read the slot map (for readiness), refresh this node's presence
        in its rooms and sweep dead nodes out of them."""
        interval = self.presence_ttl_ms / 3000
        while not self._closed:
            await asyncio.sleep(interval)
            try:
                await self.router.refresh()
            except ClusterUnavailable as exc:
                log.warning("%s", exc)
            for room_id in list(self._rooms):
                keys = [nodes_key(room_id), wake_channel(room_id)]
                args = [self.node_id, self.presence_ttl_ms, members_prefix(room_id)]
                try:
                    await self._eval(room_id, HEARTBEAT_SCRIPT, keys, args)
                except StoreUnavailable as exc:
                    log.debug("room %s: heartbeat: %s", room_id, exc)

    def ready(self) -> bool:
        return not self._closed and self.subscriber.ready()

    async def close(self) -> None:
        """Leave every room's presence at once (the other nodes need not wait for the TTL)."""
        self._closed = True
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        for room_id in list(self._rooms):
            self._rooms.pop(room_id, None)
            await self._leave(room_id)
        await self.subscriber.close()


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("presence: %s", task.exception())
