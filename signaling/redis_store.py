"""The event store on Redis Cluster: one stream per room, appended and announced atomically.

Keys share the room's hash tag, so they live in one slot on one master:

- ``room:{<id>}:log``: the room's log as a stream; the entry for event ``n`` has stream id
  ``n-0`` and fields ``ts`` (epoch ms), ``type`` and ``data`` (the event's msgpack map);
- ``room:{<id>}:wake``: a sharded pub/sub channel (SPUBLISH) carrying each append's records
  (:func:`signaling.redis_log.decode_wake` reads them);
- ``room:{<id>}:snapshot``: a hash, ``id`` (the last record folded into it) and ``data`` (the
  room's state, :class:`signaling.store.Snapshot`); the log is trimmed only behind it, in the
  same script that stores it;
- ``room:{<id>}:conflicts``: a counter of appends refused because another node appended first;
- ``groups:{<identity>}``: a hash of one staff member's saved breakout group sets, name -> the
  set's msgpack (:mod:`signaling.saved_groups`); it belongs to no room (it outlives them), has no
  expiry, and holds at most ``max_sets`` fields (checked in the script that writes it).

An append is one Lua script: it checks the stream's last id against the caller's (compare-and-
append, so two nodes deciding on one room's state cannot both append) and XADDs the events.
Redis runs a script atomically and one master serves a slot, so the check and the append cannot
interleave with another node's. On the same connection the store then sends
``WAIT <replicas> <ms>`` (:class:`signaling.redis_log.ReplicaWait`) and only then a second script
that SPUBLISHes the records if the append committed (its nonce is in the first entry). So by the
time the caller acknowledges or any other node delivers, a replica holds the events, and a
failover of the master does not take back an event anyone has seen (Redis replication is
asynchronous otherwise).

A refused append (another node appended first) returns the entries the caller lacks, so it can
decide its batch again without another round trip (docs/decisions/0012).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

import msgpack
from redis.exceptions import RedisError

from rooms import Event, Record, event_from_data

from .redis_cluster import ClusterRouter, ClusterUnavailable, parse_access, parse_seeds
from .redis_log import ReplicaWait, encode_records
from .store import AppendConflict, Snapshot, StoreUnavailable

#: Records after the caller's last id that a conflicting append sends back (so the caller can
#: decide again without another round trip); more than that, it reads them.
CONFLICT_RECORDS = 256

#: KEYS: log stream, conflict counter. ARGV: expected last id, ts, nonce, then type/data pairs.
#: The first entry also holds the append's nonce (field ``n``), which the publish script checks.
#: A conflict returns ``{0, last id, entries after the expected id}`` (at most
#: ``CONFLICT_RECORDS``) and counts itself in the counter: that write makes the ``WAIT`` after
#: the script cover the entries it returns, so the caller never delivers an entry that a
#: failover could still take back (another node appended it and may still be waiting itself).
#: An append whose nonce is already in the log (its pipeline sent again after a read timeout)
#: answers as the commit it was, so a command is never appended twice.
APPEND_SCRIPT = """
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local last_id = 0
if #last > 0 then last_id = tonumber(string.match(last[1][1], '^(%d+)-')) end
if last_id ~= tonumber(ARGV[1]) then
  local newer = {}
  if last_id > tonumber(ARGV[1]) then
    newer = redis.call('XRANGE', KEYS[1], (tonumber(ARGV[1]) + 1) .. '-0', '+', 'COUNT',
      CONFLICT_RECORDS)
    -- This very append, sent again (its reply was read late and the client resent the
    -- pipeline): it committed, so answer as if now.
    local fields = newer[1][2]
    for i = 1, #fields, 2 do
      if fields[i] == 'n' and fields[i + 1] == ARGV[3] then
        return {1, tonumber(ARGV[1]) + (#ARGV - 3) / 2}
      end
    end
    -- A write after the newer entries: the caller's WAIT then returns once a replica holds them.
    redis.call('INCR', KEYS[2])
  end
  return {0, last_id, newer}
end
local n = last_id
for i = 4, #ARGV, 2 do
  n = n + 1
  if n == last_id + 1 then
    redis.call('XADD', KEYS[1], n .. '-0', 'ts', ARGV[2], 'type', ARGV[i], 'data', ARGV[i + 1],
      'n', ARGV[3])
  else
    redis.call('XADD', KEYS[1], n .. '-0', 'ts', ARGV[2], 'type', ARGV[i], 'data', ARGV[i + 1])
  end
end
return {1, n}
""".replace("CONFLICT_RECORDS", str(CONFLICT_RECORDS))

#: KEYS: log stream, wake channel. ARGV: first id, nonce, payload. Publishes only if the entry
#: at the first id is this append's (it committed; a conflicting append publishes nothing).
PUBLISH_SCRIPT = """
local entry = redis.call('XRANGE', KEYS[1], ARGV[1] .. '-0', ARGV[1] .. '-0')
if #entry == 1 then
  local fields = entry[1][2]
  for i = 1, #fields, 2 do
    if fields[i] == 'n' and fields[i + 1] == ARGV[2] then
      redis.call('SPUBLISH', KEYS[2], ARGV[3])
      return 1
    end
  end
end
return 0
"""

#: KEYS: log stream, snapshot hash. ARGV: last id, data, keep. Stores the snapshot unless a newer
#: one is stored, trims the log through the stored one's id minus keep; returns the stored id.
SNAPSHOT_SCRIPT = """
local stored = tonumber(redis.call('HGET', KEYS[2], 'id') or '0')
if tonumber(ARGV[1]) > stored then
  redis.call('HSET', KEYS[2], 'id', ARGV[1], 'data', ARGV[2])
  stored = tonumber(ARGV[1])
end
local through = stored - tonumber(ARGV[3])
if through > 0 then redis.call('XTRIM', KEYS[1], 'MINID', string.format('%d-0', through + 1)) end
return stored
"""


#: KEYS: the owner's groups hash. ARGV: name, data, max sets. Replaces or adds the field unless
#: the hash holds ``max sets`` other fields already; 1 when stored.
SAVE_GROUPS_SCRIPT = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0
    and redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[3]) then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
"""


def groups_key(owner: str) -> str:
    return f"groups:{{{owner}}}"


def log_key(room_id: str) -> str:
    return f"room:{{{room_id}}}:log"


def wake_channel(room_id: str) -> str:
    return f"room:{{{room_id}}}:wake"


def conflicts_key(room_id: str) -> str:
    return f"room:{{{room_id}}}:conflicts"


def snapshot_key(room_id: str) -> str:
    return f"room:{{{room_id}}}:snapshot"


class RedisEventStore:
    """:class:`signaling.store.EventStore` on a Redis Cluster.

    Args:
        router: routes each room's commands to its slot's master.
        replicas: replicas that must hold an append before it is acknowledged (``WAIT``).
        replica_wait_ms: how long to wait for them; when they do not confirm in time the append
            is still acknowledged (a cluster whose replica is down keeps serving), a warning is
            logged and ``replica_wait.unconfirmed`` counts it.

    Raises:
        StoreUnavailable: from any call when the cluster cannot be reached or fails (a failover
            in progress included); an append that raised it was not acknowledged.
    """

    #: Every node of the tier appends to the same logs.
    shared = True

    def __init__(
        self,
        router: ClusterRouter,
        *,
        replicas: int = 1,
        replica_wait_ms: int = 100,
        owns_router: bool = False,
    ) -> None:
        self.router = router
        self.owns_router = owns_router
        self.replica_wait = ReplicaWait(replicas, replica_wait_ms)
        self._closed = False

    @classmethod
    def connect(cls, seeds: str, **kwargs: Any) -> RedisEventStore:
        """A store on its own router (the router learns the slot map on first use); credentials
        and TLS as the seeds name them (:func:`signaling.redis_cluster.parse_access`)."""
        router = ClusterRouter(parse_seeds(seeds), access=parse_access(seeds))
        return cls(router, owns_router=True, **kwargs)

    async def append(
        self, room_id: str, events: Sequence[Event], *, expected_last_id: int, ts: int
    ) -> list[Record]:
        packed = [(event.type, msgpack.packb(event.to_data())) for event in events]
        first = expected_last_id + 1
        wake = encode_records(first, ts, packed)
        nonce = secrets.token_hex(8)
        args: list[Any] = [expected_last_id, ts, nonce]
        for type_, data in packed:
            args += [type_, data]

        def build(pipe: Any) -> None:
            # Append, wait for a replica, then wake the other nodes: no node delivers an event
            # before a replica holds it (or the wait timed out), so a failover cannot take back
            # an event that someone has seen.
            pipe.eval(APPEND_SCRIPT, 2, log_key(room_id), conflicts_key(room_id), *args)
            if waits:
                self.replica_wait.queue(pipe)
            keys = (log_key(room_id), wake_channel(room_id))
            pipe.eval(PUBLISH_SCRIPT, 2, *keys, first, nonce, wake)

        # A master without a live replica (after a failover, until one is back) has nothing to
        # wait for: the wait would time out on every append (docs/operations.md).
        waits = self.router.has_replica(log_key(room_id))
        replies = await self._run(room_id, build, "append")
        ok, last = replies[0][:2]
        if not ok:
            newer = [_record(entry_id, _pairs(fields)) for entry_id, fields in replies[0][2]]
            raise AppendConflict(room_id, expected_last_id, newer, CONFLICT_RECORDS)
        if waits:
            self.replica_wait.confirm(replies, 1, f"room {room_id}: append {last}")
        return [Record(first + i, ts, event) for i, event in enumerate(events)]

    async def read(self, room_id: str, after_id: int, limit: int | None = None) -> list[Record]:
        replies = await self._run(
            room_id,
            lambda pipe: pipe.xrange(log_key(room_id), min=f"{after_id + 1}-0", count=limit),
            "read",
        )
        return [_record(entry_id, fields) for entry_id, fields in replies[0]]

    async def first_id(self, room_id: str) -> int:
        replies = await self._run(
            room_id, lambda pipe: pipe.xrange(log_key(room_id), count=1), "read"
        )
        return _event_id(replies[0][0][0]) if replies[0] else 0

    async def snapshot(self, room_id: str) -> Snapshot | None:
        replies = await self._run(
            room_id, lambda pipe: pipe.hmget(snapshot_key(room_id), "id", "data"), "read"
        )
        last_id, data = replies[0]
        return None if last_id is None or data is None else Snapshot(int(last_id), bytes(data))

    async def save_snapshot(self, room_id: str, snapshot: Snapshot, *, keep: int) -> int:
        if keep < 1:
            raise ValueError(f"keep must be at least 1, not {keep}")

        def build(pipe: Any) -> None:
            keys = (log_key(room_id), snapshot_key(room_id))
            pipe.eval(SNAPSHOT_SCRIPT, 2, *keys, snapshot.last_id, snapshot.data, keep)
            self.replica_wait.queue(pipe)

        replies = await self._run(room_id, build, "snapshot")
        self.replica_wait.confirm(replies, 1, f"room {room_id}: snapshot {snapshot.last_id}")
        return int(replies[0])

    async def save_groups(self, owner: str, name: str, data: bytes, *, max_sets: int) -> bool:
        key = groups_key(owner)

        def build(pipe: Any) -> None:
            pipe.eval(SAVE_GROUPS_SCRIPT, 1, key, name, data, max_sets)
            self.replica_wait.queue(pipe)

        replies = await self._run_key(key, build, "groups save")
        if replies[0]:
            self.replica_wait.confirm(replies, 1, f"groups of {owner!r}: save")
        return bool(replies[0])

    async def groups(self, owner: str) -> dict[str, bytes]:
        key = groups_key(owner)
        replies = await self._run_key(key, lambda pipe: pipe.hgetall(key), "groups read")
        return {
            (k.decode() if isinstance(k, bytes) else str(k)): bytes(v)
            for k, v in replies[0].items()
        }

    async def delete_groups(self, owner: str, name: str) -> bool:
        key = groups_key(owner)
        replies = await self._run_key(key, lambda pipe: pipe.hdel(key, name), "groups delete")
        return bool(replies[0])

    async def _run(self, room_id: str, build: Any, what: str) -> list[Any]:
        return await self._run_key(log_key(room_id), build, what)

    async def _run_key(self, key: str, build: Any, what: str) -> list[Any]:
        try:
            return await self.router.run(key, build)
        except (ClusterUnavailable, RedisError) as exc:
            raise StoreUnavailable(f"redis {what} failed: {exc}") from exc

    def ready(self) -> bool:
        return not self._closed and self.router.serving

    async def close(self) -> None:
        self._closed = True
        if self.owns_router:
            await self.router.close()


def _event_id(entry_id: bytes | str) -> int:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return int(text.partition("-")[0])


def _pairs(flat: Sequence[Any]) -> dict[Any, Any]:
    """A stream entry's fields as a script returns them (a flat list) as a map."""
    return dict(zip(flat[::2], flat[1::2], strict=True))


def _record(entry_id: bytes | str, fields: dict[Any, Any]) -> Record:
    def field(name: str) -> Any:
        return fields[name.encode()] if name.encode() in fields else fields[name]

    type_ = field("type")
    return Record(
        _event_id(entry_id),
        int(field("ts")),
        event_from_data(
            type_.decode() if isinstance(type_, bytes) else type_, msgpack.unpackb(field("data"))
        ),
    )
