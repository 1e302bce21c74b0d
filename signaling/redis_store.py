"""The event store on Redis Cluster: one stream per room, appended and announced atomically.

Keys share the room's hash tag, so they live in one slot on one master:

- ``room:{<id>}:log``: the room's log as a stream; the entry for event ``n`` has stream id
  ``n-0`` and fields ``ts`` (epoch ms), ``type`` and ``data`` (the event's msgpack map);
- ``room:{<id>}:wake``: a sharded pub/sub channel (SPUBLISH) that carries the new last id.

An append is one Lua script: it checks the stream's last id against the caller's (compare-and-
append, so two nodes deciding on one room's state cannot both append) and XADDs the events, then
SPUBLISHes the wake-up; the caller acknowledges after the script returns. Redis runs a script
atomically, and a slot is served by one master, so the check and the append cannot interleave
with another node's. See ../shared facts: redis-py's own cluster pub/sub is not used for wake-ups.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgpack
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.exceptions import RedisError

from rooms import Event, Record, event_from_data

from .store import AppendConflict, StoreUnavailable

_APPEND = """
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local last_id = 0
if #last > 0 then last_id = tonumber(string.match(last[1][1], '^(%d+)-')) end
if last_id ~= tonumber(ARGV[1]) then return {0, last_id} end
local n = last_id
for i = 3, #ARGV, 2 do
  n = n + 1
  redis.call('XADD', KEYS[1], n .. '-0', 'ts', ARGV[2], 'type', ARGV[i], 'data', ARGV[i + 1])
end
redis.call('SPUBLISH', KEYS[2], n)
return {1, n}
"""


def log_key(room_id: str) -> str:
    return f"room:{{{room_id}}}:log"


def wake_channel(room_id: str) -> str:
    return f"room:{{{room_id}}}:wake"


def parse_seeds(seeds: str) -> list[ClusterNode]:
    """``redis://host:port[,redis://host:port...]`` (the scheme is optional) as cluster nodes.

    Raises:
        ValueError: an address without a port.
    """
    nodes = []
    for seed in seeds.split(","):
        address = seed.strip().removeprefix("redis://").rstrip("/")
        host, sep, port = address.rpartition(":")
        if not sep or not port.isdigit() or not host:
            raise ValueError(f"not host:port: {seed!r}")
        nodes.append(ClusterNode(host.strip("[]"), int(port)))
    return nodes


class RedisEventStore:
    """:class:`signaling.store.EventStore` on a Redis Cluster.

    Raises:
        StoreUnavailable: from any call when the cluster cannot be reached or fails (a failover
            in progress included); the command did not take effect and can be retried.
    """

    def __init__(self, client: RedisCluster) -> None:
        self.client = client
        self._append = client.register_script(_APPEND)
        self._ready = True

    @classmethod
    def connect(cls, seeds: str) -> RedisEventStore:
        return cls(RedisCluster(startup_nodes=parse_seeds(seeds)))

    async def append(
        self, room_id: str, events: Sequence[Event], *, expected_last_id: int, ts: int
    ) -> list[Record]:
        args: list[Any] = [expected_last_id, ts]
        for event in events:
            args += [event.type, msgpack.packb(event.to_data())]
        try:
            ok, last = await self._append(keys=[log_key(room_id), wake_channel(room_id)], args=args)
        except RedisError as exc:
            raise StoreUnavailable(f"redis append failed: {exc}") from exc
        if not ok:
            raise AppendConflict(room_id, expected_last_id)
        first = int(last) - len(events) + 1
        return [Record(first + i, ts, event) for i, event in enumerate(events)]

    async def read(self, room_id: str, after_id: int, limit: int | None = None) -> list[Record]:
        try:
            entries = await self.client.xrange(
                log_key(room_id), min=f"{after_id + 1}-0", max="+", count=limit
            )
        except RedisError as exc:
            raise StoreUnavailable(f"redis read failed: {exc}") from exc
        return [_record(entry_id, fields) for entry_id, fields in entries]

    async def first_id(self, room_id: str) -> int:
        try:
            entries = await self.client.xrange(log_key(room_id), count=1)
        except RedisError as exc:
            raise StoreUnavailable(f"redis read failed: {exc}") from exc
        return _event_id(entries[0][0]) if entries else 0

    def ready(self) -> bool:
        return self._ready

    async def close(self) -> None:
        self._ready = False
        await self.client.aclose()


def _event_id(entry_id: bytes | str) -> int:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return int(text.partition("-")[0])


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
