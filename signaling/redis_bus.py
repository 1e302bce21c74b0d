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
within ``ttl`` plus one heartbeat. The heartbeat also reads the id of the room's newest record:
one past every wake-up the node heard means an append committed whose wake-up was never
published (its node died between the two), and the hub reads the store.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from typing import Any

import msgpack
from redis.exceptions import RedisError

from rooms import Participant, Record

from .bus import RoomSubscriber
from .redis_cluster import ClusterRouter, ClusterUnavailable, as_text
from .redis_log import PresenceWake, RecordsWake, decode_wake, encode_presence
from .redis_store import log_key, wake_channel
from .redis_subscriber import ShardedSubscriber
from .store import StoreUnavailable

log = logging.getLogger(__name__)

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

#: KEYS: nodes, this node's members, seqs, wake. ARGV: node, ttl ms, payload, seq, joined
#: count, identity/participant pairs, then identities that left.
ANNOUNCE_SCRIPT = (
    _NOW
    + """
local ttl = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[4])
local i = 6
for k = 1, tonumber(ARGV[5]) do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
  i = i + 2
end
for k = i, #ARGV do redis.call('HDEL', KEYS[2], ARGV[k]) end
for _, key in ipairs({KEYS[1], KEYS[2], KEYS[3]}) do redis.call('PEXPIRE', key, ttl * 20) end
redis.call('SPUBLISH', KEYS[4], ARGV[3])
return 1
"""
)

#: Removes node ``node`` from a room and publishes its members' departure (seq 0: forget it), as
#: a presence wake-up (:mod:`signaling.redis_log`).
_DROP_NODE = """
local function drop(node)
  local key = ARGV[3] .. node
  local gone = redis.call('HKEYS', key)
  redis.call('DEL', key)
  redis.call('ZREM', KEYS[1], node)
  redis.call('HDEL', KEYS[3], node)
  redis.call('SPUBLISH', KEYS[2], cmsgpack.pack({1, node, {}, gone, 0}))
end
"""

#: KEYS: nodes, wake, seqs, log. ARGV: node, ttl ms, members key prefix.
#: Refreshes the node's time and removes expired nodes, publishing their members' departure;
#: returns how many it removed and the id of the log's newest record (0: none).
HEARTBEAT_SCRIPT = (
    _NOW
    + _DROP_NODE
    + """
local ttl = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
for _, key in ipairs({KEYS[1], KEYS[3], ARGV[3] .. ARGV[1]}) do
  redis.call('PEXPIRE', key, ttl * 20)
end
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
for _, node in ipairs(dead) do drop(node) end
local newest = redis.call('XREVRANGE', KEYS[4], '+', '-', 'COUNT', 1)
local last_id = 0
if #newest > 0 then last_id = tonumber(string.match(newest[1][1], '^(%d+)-')) end
return {#dead, last_id}
"""
)

#: KEYS: nodes, wake, seqs. ARGV: node, unused, members key prefix. Leaves the room at once.
LEAVE_SCRIPT = _DROP_NODE + "drop(ARGV[1])\nreturn 1\n"

#: KEYS: nodes, seqs. ARGV: this node, members key prefix.
#: Every other live node with its announcement seq and its members (identity/participant pairs).
ROSTERS_SCRIPT = (
    _NOW
    + """
local out = {}
for _, node in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')) do
  if node ~= ARGV[1] then
    table.insert(out, node)
    table.insert(out, redis.call('HGET', KEYS[2], node) or '0')
    table.insert(out, redis.call('HGETALL', ARGV[2] .. node))
  end
end
return out
"""
)


def nodes_key(room_id: str) -> str:
    return f"room:{{{room_id}}}:nodes"


def members_prefix(room_id: str) -> str:
    return f"room:{{{room_id}}}:members:"


def seqs_key(room_id: str) -> str:
    return f"room:{{{room_id}}}:presence-seq"


class _RoomChannel:
    """Feeds one room's wake channel to its hub, putting other nodes' presence in order.

    Each node numbers its announcements for a room; a delta older than what is known is a repeat
    and dropped, and one that skips a number means one was missed, so the rosters are re-read.
    A re-read replaces a node's members only if it is not older than the deltas already applied.
    """

    def __init__(self, bus: RedisBus, room_id: str, subscriber: RoomSubscriber) -> None:
        self.bus = bus
        self.room_id = room_id
        self.subscriber = subscriber
        self.seqs: dict[str, int] = {}
        #: The newest record id a wake-up carried, or the heartbeat found in the log.
        self.heard = 0

    def message(self, payload: bytes) -> None:
        try:
            wake = decode_wake(payload)
        except ValueError as exc:
            log.warning("room %s: %s", self.room_id, exc)
            self.subscriber.missed()
            return
        if isinstance(wake, RecordsWake):
            if wake.records:
                self.heard = max(self.heard, wake.records[-1].id)
                self.subscriber.deliver(wake.records)
        elif isinstance(wake, PresenceWake):
            if wake.node and wake.node != self.bus.node_id:
                self._presence(wake)
        else:
            log.warning("room %s: a board's wake-up on the room's channel", self.room_id)
            self.subscriber.missed()

    def _presence(self, wake: PresenceWake) -> None:
        if wake.seq == 0:  # the node left the room or died
            self.seqs.pop(wake.node, None)
            self.subscriber.roster(wake.node, [])
            return
        known = self.seqs.get(wake.node, 0)
        if wake.seq <= known:
            return
        self.seqs[wake.node] = wake.seq
        self.subscriber.presence(wake.node, wake.joined, wake.left)
        if wake.seq != known + 1:
            self.bus.reload_rosters(self.room_id)

    def rosters(
        self, rosters: dict[str, tuple[int, list[Participant]]], asked: dict[str, int]
    ) -> None:
        """Apply a re-read (``asked``: the numbers known when it was requested)."""
        for node, (seq, people) in rosters.items():
            if seq >= self.seqs.get(node, 0):
                self.seqs[node] = seq
                self.subscriber.roster(node, people)
        for node in [n for n in self.seqs if n not in rosters]:
            if self.seqs[node] == asked.get(node):  # nothing newer came since: it is gone
                del self.seqs[node]
                self.subscriber.roster(node, [])

    def resubscribed(self) -> None:
        self.subscriber.missed()
        self.bus.reload_rosters(self.room_id)

    def log_at(self, last_id: int) -> None:
        """The heartbeat read the log's newest id: past every wake-up heard, the room's hub may
        have missed records no wake-up announced (an appender died between its append and the
        wake-up after it), so it reads the store."""
        if last_id > self.heard:
            self.heard = last_id
            self.subscriber.missed()


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
        #: Per room: the last announcement number, and a lock keeping announcements in order.
        self._seqs: dict[str, int] = {}
        self._announcing: dict[str, asyncio.Lock] = {}
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
        except (ClusterUnavailable, StoreUnavailable) as exc:
            self._rooms.pop(room_id, None)
            await self.subscriber.unsubscribe(wake_channel(room_id))
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
        lock = self._announcing.setdefault(room_id, asyncio.Lock())
        async with lock:  # one at a time per room, so they apply in their numbers' order
            seq = self._seqs.get(room_id, 0) + 1
            self._seqs[room_id] = seq
            payload = encode_presence(self.node_id, joined, [p.identity for p in left], seq)
            args: list[Any] = [self.node_id, self.presence_ttl_ms, payload, seq, len(joined)]
            for p in joined:
                args += [p.identity, msgpack.packb(p.to_wire())]
            args += [p.identity for p in left]
            keys = [
                nodes_key(room_id),
                members_prefix(room_id) + self.node_id,
                seqs_key(room_id),
                wake_channel(room_id),
            ]
            await self._eval(room_id, ANNOUNCE_SCRIPT, keys, args)

    def reload_rosters(self, room_id: str) -> None:
        task = asyncio.get_running_loop().create_task(self._load_rosters(room_id))
        task.add_done_callback(_log_failure)

    async def _load_rosters(self, room_id: str) -> None:
        channel = self._rooms.get(room_id)
        if channel is None:
            return
        asked = dict(channel.seqs)
        reply = await self._eval(
            room_id,
            ROSTERS_SCRIPT,
            [nodes_key(room_id), seqs_key(room_id)],
            [self.node_id, members_prefix(room_id)],
        )
        rosters: dict[str, tuple[int, list[Participant]]] = {}
        for i in range(0, len(reply), 3):
            node, seq, flat = as_text(reply[i]), int(reply[i + 1]), reply[i + 2]
            people = []
            for j in range(1, len(flat), 2):
                try:
                    people.append(Participant.from_wire(msgpack.unpackb(flat[j])))
                except (ValueError, msgpack.UnpackException) as exc:
                    log.warning("room %s: a bad presence entry of node %s: %s", room_id, node, exc)
            rosters[node] = (seq, people)
        if self._rooms.get(room_id) is channel:
            channel.rosters(rosters, asked)

    async def _leave(self, room_id: str) -> None:
        keys = [nodes_key(room_id), wake_channel(room_id), seqs_key(room_id)]
        try:
            await self._eval(
                room_id, LEAVE_SCRIPT, keys, [self.node_id, 0, members_prefix(room_id)]
            )
        except StoreUnavailable as exc:
            log.warning("room %s: leaving presence failed (it expires): %s", room_id, exc)
        self._seqs.pop(room_id, None)
        self._announcing.pop(room_id, None)

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
        in its rooms and sweep dead nodes out of them, and hand each room's hub the log's newest
        id, so a record no wake-up announced is read within one heartbeat."""
        interval = self.presence_ttl_ms / 3000
        while not self._closed:
            await asyncio.sleep(interval)
            try:
                await self.router.refresh()
            except ClusterUnavailable as exc:
                log.warning("%s", exc)
            for room_id in list(self._rooms):
                keys = [nodes_key(room_id), wake_channel(room_id), seqs_key(room_id)]
                keys.append(log_key(room_id))
                args = [self.node_id, self.presence_ttl_ms, members_prefix(room_id)]
                try:
                    _, last_id = await self._eval(room_id, HEARTBEAT_SCRIPT, keys, args)
                except StoreUnavailable as exc:
                    log.debug("room %s: heartbeat: %s", room_id, exc)
                    continue
                channel = self._rooms.get(room_id)
                if channel is not None:
                    channel.log_at(int(last_id))

    def ready(self) -> bool:
        return not self._closed and self.subscriber.ready()

    async def close(self) -> None:
        """Leave every room's presence at once (the other nodes need not wait for the TTL), then
        close the subscriber and the router (the bus is the last of the node's parts to use it)."""
        self._closed = True
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        for room_id in list(self._rooms):
            self._rooms.pop(room_id, None)
            await self._leave(room_id)
        await self.subscriber.close()
        await self.router.close()


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("presence: %s", task.exception())
