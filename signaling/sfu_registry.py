"""The SFU worker registry and room placement on Redis Cluster.

Every key shares the hash tag ``{sfu}``, so they live in one slot and each script below reads
and writes them atomically:

- ``{sfu}:workers``: a sorted set, worker id -> the time (ms, Redis server clock) its
  registration expires; a worker refreshes it every ``ttl / 3`` (:class:`Registration`);
- ``{sfu}:urls``: a hash, worker id -> its RPC URL (``ws://host:port``);
- ``{sfu}:load``: a hash, worker id -> its load: the peers it holds as of its last heartbeat,
  plus one for each room placed on it since, so a burst of new rooms spreads over the workers;
- ``{sfu}:draining``: a set, the workers taken out of placement (:meth:`WorkerRegistry.drain`):
  they keep the rooms they hold, and the registration's heartbeats keep those rooms' placements
  alive, but no room is placed on them anew; a worker leaves the set when it leaves the registry;
- ``{sfu}:room:<room>``: a string, the worker holding the room's media (its Routers, breakouts
  included). It expires ``room_ttl_ms`` after the last placement or after the last heartbeat of
  that worker while it still had a Router of the room, so finished rooms leave no trace.

Placing a room (:data:`PLACE_SCRIPT`) is one compare-and-set: the room's recorded worker is kept
while it is live and the caller has not found it dead (draining or not); otherwise the
least-loaded live worker that is not draining and that the caller has not found dead is
recorded. Nodes that lose the same worker at once therefore agree on its successor: the first
one's script records it, the others find it live and keep it.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from redis.exceptions import RedisError

from .redis_cluster import ClusterRouter, ClusterUnavailable, as_text

log = logging.getLogger(__name__)

WORKERS = "{sfu}:workers"
URLS = "{sfu}:urls"
LOAD = "{sfu}:load"
DRAINING = "{sfu}:draining"
EPOCHS = "{sfu}:epochs"
SUSPECT = "{sfu}:suspect"
#: Every script's keys, in this order (PLACE_SCRIPT adds the room's key).
_KEYS = [WORKERS, URLS, LOAD, DRAINING, EPOCHS, SUSPECT]
ROOM_PREFIX = "{sfu}:room:"

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

_FORGET = """
local function forget(id)
  redis.call('ZREM', KEYS[1], id)
  redis.call('HDEL', KEYS[2], id)
  redis.call('HDEL', KEYS[3], id)
  redis.call('SREM', KEYS[4], id)
  redis.call('HDEL', KEYS[5], id)
  redis.call('HDEL', KEYS[6], id)
end
"""

#: A node's finding that a worker is dead, shared: ``{sfu}:suspect`` holds id -> "<epoch>:<until
#: ms>" and applies while that worker id still runs the same process (epoch) and until then.
_SUSPECT = """
local function suspected(id, now)
  local v = redis.call('HGET', KEYS[6], id)
  if not v then return false end
  local epoch, untl = string.match(v, '^(.*):(%d+)$')
  if not untl or tonumber(untl) <= now then
    redis.call('HDEL', KEYS[6], id)
    return false
  end
  return epoch == (redis.call('HGET', KEYS[5], id) or '')
end
local function suspect(id, epoch, now, hold)
  local current = redis.call('HGET', KEYS[5], id)
  if not current then return end
  if epoch ~= '' and epoch ~= current then return end
  if suspected(id, now) then return end
  redis.call('HSET', KEYS[6], id, current .. ':' .. (now + hold))
end
"""

#: KEYS: see _KEYS. ARGV: id, url, ttl ms, load, room ttl ms, room key prefix, epoch, rooms...
#: Registers or refreshes the worker, keeps its rooms' placements alive (and records one that was
#: lost, a failover dropping the last write, say: the Routers here are the truth), sweeps expired
#: workers. A new epoch (a restarted process under the same id) clears what nodes found about the
#: old one. Returns 1 when the worker is draining, else 0.
HEARTBEAT_SCRIPT = (
    _NOW
    + _FORGET
    + """
local id = ARGV[1]
if redis.call('HGET', KEYS[5], id) ~= ARGV[7] then
  redis.call('HSET', KEYS[5], id, ARGV[7])
  redis.call('HDEL', KEYS[6], id)
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), id)
redis.call('HSET', KEYS[2], id, ARGV[2])
redis.call('HSET', KEYS[3], id, ARGV[4])
for i = 8, #ARGV do
  local key = ARGV[6] .. ARGV[i]
  local placed = redis.call('GET', key)
  if placed == id then redis.call('PEXPIRE', key, ARGV[5])
  elseif not placed then redis.call('SET', key, id, 'PX', ARGV[5]) end
end
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
for _, gone in ipairs(dead) do forget(gone) end
return redis.call('SISMEMBER', KEYS[4], id)
"""
)

#: KEYS: see _KEYS. ARGV: id, room key prefix, rooms... Leaves placement at once.
UNREGISTER_SCRIPT = (
    _FORGET
    + """
forget(ARGV[1])
for i = 3, #ARGV do
  local key = ARGV[2] .. ARGV[i]
  if redis.call('GET', key) == ARGV[1] then redis.call('DEL', key) end
end
return 1
"""
)

#: KEYS: see _KEYS, then the room's key. ARGV: room ttl ms, suspicion hold ms, then (id, epoch)
#: pairs of the workers the caller found dead (epoch '': the process registered now). Returns
#: {worker id, url, 1 if placed now / 0 if kept, epoch} or {} when no worker can take the room.
PLACE_SCRIPT = (
    _NOW
    + _SUSPECT
    + """
for i = 3, #ARGV, 2 do suspect(ARGV[i], ARGV[i + 1], now, tonumber(ARGV[2])) end
local current = redis.call('GET', KEYS[7])
if current and not suspected(current, now) then
  local expires = redis.call('ZSCORE', KEYS[1], current)
  if expires and tonumber(expires) > now then
    redis.call('PEXPIRE', KEYS[7], ARGV[1])
    return {current, redis.call('HGET', KEYS[2], current), 0,
            redis.call('HGET', KEYS[5], current) or ''}
  end
end
local best, best_load = nil, nil
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')) do
  if redis.call('SISMEMBER', KEYS[4], id) == 0 and not suspected(id, now) then
    local load = tonumber(redis.call('HGET', KEYS[3], id) or '0') or 0
    if best == nil or load < best_load or (load == best_load and id < best) then
      best, best_load = id, load
    end
  end
end
if best == nil then return {} end
redis.call('SET', KEYS[7], best, 'PX', ARGV[1])
redis.call('HINCRBY', KEYS[3], best, 1)
return {best, redis.call('HGET', KEYS[2], best), 1, redis.call('HGET', KEYS[5], best) or ''}
"""
)

#: KEYS: workers, urls, epochs. ARGV: room key prefix, rooms... Returns {live id/url/epoch
#: triples, the rooms' workers (false when unplaced)}.
VIEW_SCRIPT = (
    _NOW
    + """
local live = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')) do
  table.insert(live, id)
  table.insert(live, redis.call('HGET', KEYS[2], id) or '')
  table.insert(live, redis.call('HGET', KEYS[3], id) or '')
end
local rooms = {}
for i = 2, #ARGV do table.insert(rooms, redis.call('GET', ARGV[1] .. ARGV[i]) or '') end
return {live, rooms}
"""
)


#: KEYS: workers, draining. ARGV: id, 1 to drain / 0 to return to placement. Returns 1 if the
#: worker is registered (live or not yet swept), else 0 (nothing is changed then).
DRAIN_SCRIPT = """
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
if ARGV[2] == '1' then redis.call('SADD', KEYS[2], ARGV[1])
else redis.call('SREM', KEYS[2], ARGV[1]) end
return 1
"""


class RegistryUnavailable(Exception):
    """The cluster cannot be asked now (a failover, say)."""


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a room's media is: the worker's id and RPC URL; ``new`` if placed by this call;
    ``epoch``, the worker process's registration (a restart under the same id changes it)."""

    worker_id: str
    url: str
    new: bool
    epoch: str = ""


@dataclass(frozen=True, slots=True)
class RegistryView:
    """Live workers (id -> URL), the recorded worker of each room asked about, and the live
    workers' epochs (id -> epoch)."""

    live: dict[str, str]
    rooms: dict[str, str | None]
    epochs: dict[str, str] = field(default_factory=dict)


class WorkerRegistry:
    """The workers and placements above, on the cluster's ``{sfu}`` slot.

    Args:
        router: the node's or worker's slot map.
        room_ttl_ms: how long a placement outlives its last use.
        suspect_ms: how long a worker a node found dead stays out of placement for every node
            (unless its process restarts or it leaves the registry sooner).
    """

    def __init__(
        self, router: ClusterRouter, *, room_ttl_ms: int = 30_000, suspect_ms: int = 60_000
    ) -> None:
        self.router = router
        self.room_ttl_ms = room_ttl_ms
        self.suspect_ms = suspect_ms

    async def _eval(self, script: str, keys: list[str], args: list[Any]) -> Any:
        try:
            replies = await self.router.run(
                keys[0], lambda pipe: pipe.eval(script, len(keys), *keys, *args)
            )
        except (ClusterUnavailable, RedisError) as exc:
            raise RegistryUnavailable(f"the SFU registry is unavailable: {exc}") from exc
        return replies[0]

    async def heartbeat(
        self,
        worker_id: str,
        url: str,
        ttl_ms: int,
        load: int,
        rooms: Sequence[str],
        epoch: str = "",
    ) -> bool:
        """Register or refresh a worker (see :data:`HEARTBEAT_SCRIPT`); returns whether it is
        draining.

        Raises:
            RegistryUnavailable: the cluster did not answer.
        """
        args = [worker_id, url, ttl_ms, load, self.room_ttl_ms, ROOM_PREFIX, epoch, *rooms]
        return bool(await self._eval(HEARTBEAT_SCRIPT, _KEYS, args))

    async def unregister(self, worker_id: str, rooms: Sequence[str]) -> None:
        """Take a worker out of placement now, with the placements it holds.

        Raises:
            RegistryUnavailable: the cluster did not answer.
        """
        await self._eval(UNREGISTER_SCRIPT, _KEYS, [worker_id, ROOM_PREFIX, *rooms])

    async def drain(self, worker_id: str, draining: bool = True) -> bool:
        """Take a registered worker out of placement (``draining`` False: put it back). It keeps
        the rooms it holds until they end; no room is placed on it anew. The mark lasts as long
        as the worker's registration (a restarted worker is placed again). This is what
        ``liveclass sfu`` does on SIGUSR1 (SIGUSR2 undoes it) and what an admin tool calls.

        Returns False when no worker of that id is registered (nothing changed).

        Raises:
            RegistryUnavailable: the cluster did not answer.
        """
        reply = await self._eval(DRAIN_SCRIPT, [WORKERS, DRAINING], [worker_id, int(draining)])
        return bool(reply)

    async def draining(self) -> set[str]:
        """The workers taken out of placement.

        Raises:
            RegistryUnavailable: the cluster did not answer.
        """
        try:
            members = await self.router.run(DRAINING, lambda pipe: pipe.smembers(DRAINING))
        except (ClusterUnavailable, RedisError) as exc:
            raise RegistryUnavailable(f"the SFU registry is unavailable: {exc}") from exc
        return {as_text(m) for m in members[0]}

    async def place(
        self, room_id: str, dead: Mapping[str, str] | Sequence[str] = ()
    ) -> Placement | None:
        """The worker for ``room_id``: the recorded one unless a node found it dead, else the
        least-loaded live worker that is neither draining nor found dead (recorded). None when
        there is none.

        ``dead``: the workers the caller found dead, id -> the epoch it knew them by (a plain
        id: the process registered now). Recorded for every node (``{sfu}:suspect``, for
        ``suspect_ms``) unless that id runs another process by now: so two nodes never disagree
        about a worker one of them lost, and a node that lost an earlier process of a restarted
        worker does not move its rooms.

        Raises:
            RegistryUnavailable: the cluster did not answer.
        """
        pairs = dead.items() if isinstance(dead, Mapping) else ((w, "") for w in dead)
        reply = await self._eval(
            PLACE_SCRIPT,
            [*_KEYS, ROOM_PREFIX + room_id],
            [self.room_ttl_ms, self.suspect_ms, *(x for pair in pairs for x in pair)],
        )
        if not reply:
            return None
        return Placement(
            as_text(reply[0]), as_text(reply[1] or b""), bool(int(reply[2])), as_text(reply[3])
        )

    async def view(self, rooms: Sequence[str]) -> RegistryView:
        """The live workers and the recorded worker of each room in ``rooms``.

        Raises:
            RegistryUnavailable: the cluster did not answer.
        """
        live, placed = await self._eval(VIEW_SCRIPT, [WORKERS, URLS, EPOCHS], [ROOM_PREFIX, *rooms])
        triples = [live[i : i + 3] for i in range(0, len(live), 3)]
        return RegistryView(
            {as_text(w): as_text(url) for w, url, _ in triples},
            {room: (as_text(w) or None) for room, w in zip(rooms, placed, strict=True)},
            {as_text(w): as_text(epoch) for w, _, epoch in triples},
        )


#: Longest registry outage (s) a registered worker stays ready through: a master failover with
#: Redis's default ``cluster-node-timeout`` (15 s) fits in it; an outage this long means the
#: worker is cut off from the cluster, and the nodes have forgotten it.
REGISTRY_OUTAGE_S = 30.0


class Registration:
    """A worker process's registration: a heartbeat every ``ttl_ms / 3`` (at most 1 s apart),
    with its load and rooms from ``status()``; unregistered on :meth:`close`.

    Args:
        registry: the registry.
        worker_id: the worker's id.
        url: its RPC URL.
        status: ``() -> (load, rooms)``.
        ttl_ms: a worker silent this long is dead.
    """

    def __init__(
        self,
        registry: WorkerRegistry,
        worker_id: str,
        url: str,
        status: Callable[[], tuple[int, Sequence[str]]],
        ttl_ms: int = 3000,
    ) -> None:
        self.registry = registry
        self.worker_id = worker_id
        self.url = url
        self.status = status
        self.ttl_ms = ttl_ms
        self._last_ok = float("-inf")
        #: When the registry stopped answering this worker's heartbeats (None: it answers).
        self._unreachable_since: float | None = None
        #: Whether the registry had this worker draining at the last heartbeat.
        self.draining = False
        #: This process's registration: a restart under the same id is another epoch.
        self.epoch = secrets.token_hex(6)
        self._task: asyncio.Task[None] | None = None

    @property
    def registered(self) -> bool:
        """The last successful heartbeat is younger than the TTL."""
        loop = asyncio.get_running_loop()
        return loop.time() - self._last_ok < self.ttl_ms / 1000

    @property
    def ready(self) -> bool:
        """Whether this worker serves and takes new rooms (its ``/readyz``): registered, or
        registered before and cut off from the registry for less than
        :data:`REGISTRY_OUTAGE_S`. A failover of the registry's master stops every worker's
        heartbeat at once; the workers keep serving their rooms and register again when a
        master answers, so such an outage does not make every worker unready at once. While it
        lasts no node can read the registry either, so nothing is placed anywhere."""
        if self.registered:
            return True
        since = self._unreachable_since
        return (
            since is not None
            and self._last_ok > float("-inf")
            and asyncio.get_running_loop().time() - since < REGISTRY_OUTAGE_S
        )

    async def start(self) -> None:
        """Register now, then keep the registration fresh.

        Raises:
            RegistryUnavailable: the first registration failed.
        """
        await self._beat()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _beat(self) -> None:
        load, rooms = self.status()
        draining = await self.registry.heartbeat(
            self.worker_id, self.url, self.ttl_ms, load, rooms, self.epoch
        )
        if draining != self.draining:
            log.warning(
                "sfu: worker %s %s (%d rooms here)",
                self.worker_id,
                "is draining: no new room is placed here" if draining else "takes new rooms again",
                len(rooms),
            )
        self.draining = draining
        self._last_ok = asyncio.get_running_loop().time()

    async def _run(self) -> None:
        interval = min(1.0, self.ttl_ms / 3000)
        while True:
            await asyncio.sleep(interval)
            try:
                await self._beat()
            except RegistryUnavailable as exc:
                if self._unreachable_since is None:
                    self._unreachable_since = asyncio.get_running_loop().time()
                log.warning("sfu heartbeat failed: %s", exc)
            else:
                if self._unreachable_since is not None:
                    outage = asyncio.get_running_loop().time() - self._unreachable_since
                    log.info("sfu: registered again after %.1f s without the registry", outage)
                self._unreachable_since = None

    async def drain(self, draining: bool = True) -> None:
        """Take this worker out of placement (or put it back) now (:meth:`WorkerRegistry.drain`).

        Raises:
            RegistryUnavailable: the cluster did not answer.
        """
        await self.registry.drain(self.worker_id, draining)
        await self._beat()

    async def close(self) -> None:
        """Stop the heartbeat and leave placement at once."""
        if self._task is not None:
            self._task.cancel()
        try:
            await self.registry.unregister(self.worker_id, self.status()[1])
        except RegistryUnavailable as exc:
            log.warning("sfu: could not unregister (the registration expires): %s", exc)
