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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from redis.exceptions import RedisError

from .redis_cluster import ClusterRouter, ClusterUnavailable, as_text

log = logging.getLogger(__name__)

WORKERS = "{sfu}:workers"
URLS = "{sfu}:urls"
LOAD = "{sfu}:load"
DRAINING = "{sfu}:draining"
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
end
"""

#: KEYS: workers, urls, load, draining. ARGV: id, url, ttl ms, load, room ttl ms, room key prefix,
#: rooms... Registers or refreshes the worker, keeps its rooms' placements alive, sweeps expired
#: workers. Returns 1 when the worker is draining, else 0.
HEARTBEAT_SCRIPT = (
    _NOW
    + _FORGET
    + """
local id = ARGV[1]
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), id)
redis.call('HSET', KEYS[2], id, ARGV[2])
redis.call('HSET', KEYS[3], id, ARGV[4])
for i = 7, #ARGV do
  local key = ARGV[6] .. ARGV[i]
  if redis.call('GET', key) == id then redis.call('PEXPIRE', key, ARGV[5]) end
end
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
for _, gone in ipairs(dead) do forget(gone) end
return redis.call('SISMEMBER', KEYS[4], id)
"""
)

#: KEYS: workers, urls, load, draining. ARGV: id, room key prefix, rooms... Leaves placement at
#: once.
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

#: KEYS: workers, urls, load, the room's key, draining. ARGV: room ttl ms, ids the caller found
#: dead...
#: Returns {worker id, url, 1 if placed now / 0 if kept} or {} when no worker is live.
PLACE_SCRIPT = (
    _NOW
    + """
local dead = {}
for i = 2, #ARGV do dead[ARGV[i]] = true end
local current = redis.call('GET', KEYS[4])
if current and not dead[current] then
  local expires = redis.call('ZSCORE', KEYS[1], current)
  if expires and tonumber(expires) > now then
    redis.call('PEXPIRE', KEYS[4], ARGV[1])
    return {current, redis.call('HGET', KEYS[2], current), 0}
  end
end
local best, best_load = nil, nil
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')) do
  if not dead[id] and redis.call('SISMEMBER', KEYS[5], id) == 0 then
    local load = tonumber(redis.call('HGET', KEYS[3], id) or '0') or 0
    if best == nil or load < best_load or (load == best_load and id < best) then
      best, best_load = id, load
    end
  end
end
if best == nil then return {} end
redis.call('SET', KEYS[4], best, 'PX', ARGV[1])
redis.call('HINCRBY', KEYS[3], best, 1)
return {best, redis.call('HGET', KEYS[2], best), 1}
"""
)

#: KEYS: workers, urls. ARGV: room key prefix, rooms... Returns {live id/url pairs, the rooms'
#: workers (false when unplaced)}.
VIEW_SCRIPT = (
    _NOW
    + """
local live = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')) do
  table.insert(live, id)
  table.insert(live, redis.call('HGET', KEYS[2], id) or '')
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
    """Where a room's media is: the worker's id and RPC URL; ``new`` if placed by this call."""

    worker_id: str
    url: str
    new: bool


@dataclass(frozen=True, slots=True)
class RegistryView:
    """Live workers (id -> URL) and the recorded worker of each room asked about."""

    live: dict[str, str]
    rooms: dict[str, str | None]


class WorkerRegistry:
    """The workers and placements above, on the cluster's ``{sfu}`` slot.

    Args:
        router: the node's or worker's slot map.
        room_ttl_ms: how long a placement outlives its last use.
    """

    def __init__(self, router: ClusterRouter, *, room_ttl_ms: int = 30_000) -> None:
        self.router = router
        self.room_ttl_ms = room_ttl_ms

    async def _eval(self, script: str, keys: list[str], args: list[Any]) -> Any:
        try:
            replies = await self.router.run(
                keys[0], lambda pipe: pipe.eval(script, len(keys), *keys, *args)
            )
        except (ClusterUnavailable, RedisError) as exc:
            raise RegistryUnavailable(f"the SFU registry is unavailable: {exc}") from exc
        return replies[0]

    async def heartbeat(
        self, worker_id: str, url: str, ttl_ms: int, load: int, rooms: Sequence[str]
    ) -> bool:
        """Register or refresh a worker (see :data:`HEARTBEAT_SCRIPT`); returns whether it is
        draining.

        Raises:
            RegistryUnavailable: the cluster did not answer.
        """
        args = [worker_id, url, ttl_ms, load, self.room_ttl_ms, ROOM_PREFIX, *rooms]
        return bool(await self._eval(HEARTBEAT_SCRIPT, [WORKERS, URLS, LOAD, DRAINING], args))

    async def unregister(self, worker_id: str, rooms: Sequence[str]) -> None:
        """Take a worker out of placement now, with the placements it holds.

        Raises:
            RegistryUnavailable: the cluster did not answer.
        """
        await self._eval(
            UNREGISTER_SCRIPT, [WORKERS, URLS, LOAD, DRAINING], [worker_id, ROOM_PREFIX, *rooms]
        )

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

    async def place(self, room_id: str, dead: Sequence[str] = ()) -> Placement | None:
        """The worker for ``room_id``: the recorded one if live and not in ``dead``, else the
        least-loaded live worker not in ``dead`` (recorded). None when there is none.

        Raises:
            RegistryUnavailable: the cluster did not answer.
        """
        reply = await self._eval(
            PLACE_SCRIPT,
            [WORKERS, URLS, LOAD, ROOM_PREFIX + room_id, DRAINING],
            [self.room_ttl_ms, *dead],
        )
        if not reply:
            return None
        return Placement(as_text(reply[0]), as_text(reply[1] or b""), bool(int(reply[2])))

    async def view(self, rooms: Sequence[str]) -> RegistryView:
        """The live workers and the recorded worker of each room in ``rooms``.

        Raises:
            RegistryUnavailable: the cluster did not answer.
        """
        live, placed = await self._eval(VIEW_SCRIPT, [WORKERS, URLS], [ROOM_PREFIX, *rooms])
        workers = {as_text(live[i]): as_text(live[i + 1]) for i in range(0, len(live), 2)}
        return RegistryView(
            workers, {room: (as_text(w) or None) for room, w in zip(rooms, placed, strict=True)}
        )


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
        #: Whether the registry had this worker draining at the last heartbeat.
        self.draining = False
        self._task: asyncio.Task[None] | None = None

    @property
    def registered(self) -> bool:
        """The last successful heartbeat is younger than the TTL."""
        loop = asyncio.get_running_loop()
        return loop.time() - self._last_ok < self.ttl_ms / 1000

    async def start(self) -> None:
        """Register now, then keep the registration fresh.

        Raises:
            RegistryUnavailable: the first registration failed.
        """
        await self._beat()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _beat(self) -> None:
        load, rooms = self.status()
        draining = await self.registry.heartbeat(self.worker_id, self.url, self.ttl_ms, load, rooms)
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
                log.warning("sfu heartbeat failed: %s", exc)

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
