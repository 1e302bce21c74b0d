"""The board store on Redis Cluster: each board's Yjs update log as a stream, woken atomically.

All of a board's keys carry the room's hash tag, so they live in one slot on one master and one Lua
script can change them together (``<b>`` is the board's name):

- ``room:{<room>}:board:<b>:log``: the updates after the compaction base, a stream; update ``seq``
  is the entry ``<seq>-0`` with one field ``u`` (the Yjs v1 update bytes);
- ``room:{<room>}:board:<b>:base``: the merged update standing for every update up to ``base_seq``;
- ``room:{<room>}:board:<b>:meta``: a hash of bookkeeping: ``last_seq``, ``base_seq`` and ``size``
  (bytes of the base plus the log, what :meth:`RedisBoardStore.load` reports);
- ``room:{<room>}:board:<b>:marks``: a hash of the board's marks (``cleared_through``, ...), kept
  apart from the bookkeeping so no mark name can clash with it;
- ``room:{<room>}:board:<b>:snap:<id>``: a hash per snapshot, fields ``u`` (update) and ``ts``
  (epoch ms);
- ``room:{<room>}:board:<b>:compactor``: the compaction lease (the holder's name, with a TTL);
- ``room:{<room>}:board:<b>:wake``: a sharded pub/sub channel (SPUBLISH) announcing each append.

An append is one script: it numbers the updates after ``last_seq`` (Yjs updates commute, so
several nodes may append to one board at once without a compare; each append gets consecutive
seqs), XADDs them, sets the marks and SPUBLISHes the wake-up. A script runs alone on its master,
but Redis does not roll back a script that fails half-way, so every script here reads and checks
everything before its first write. Scripts are sent with EVAL, never EVALSHA: a replica promoted
in a failover has an empty script cache and would answer NOSCRIPT.

Commands go through a :class:`whiteboard.store.KeyRouter` (``signaling.redis_cluster.
ClusterRouter`` in a node), which runs them on one connection of the slot's master. Every write
(append, marks, compaction, snapshot) is followed on that connection by the room log's replica
wait, a :class:`whiteboard.store.ReplicaWait` (``signaling.redis_log.ReplicaWait`` in a node:
``WAIT <replicas> <ms>``), so by the time the caller relays an update a replica holds it and a
failover of the master does not lose it (Redis replicates asynchronously otherwise). When the
replicas do not confirm in time the write is acknowledged anyway (counted and logged there). The
wake-up leaves inside the script, before the ``WAIT``: another node may relay an update a failover
then loses; its clients still hold it and send it back when they sync with the reloaded board.

The wake-up payload is the room log's wake-up format (``signaling.redis_log``, which decodes it)
of kind 2: the msgpack array ``[2, first_seq, [update, ...]]``. The script builds it with Redis's
``cmsgpack`` from the updates it was given, so an update crosses the network once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from redis.exceptions import RedisError

from .store import BoardStoreUnavailable, KeyRouter, ReplicaWait, StoredBoard

# KEYS: log, meta, marks, wake. ARGV: the number of marks m, m name/value pairs, the updates.
# The wake-up is ``[2, first_seq, [update, ...]]`` (kind 2: a board's updates).
_APPEND = """
local last = tonumber(redis.call('HGET', KEYS[2], 'last_seq') or '0')
local first_update = 2 + 2 * tonumber(ARGV[1])
if first_update > 2 then redis.call('HSET', KEYS[3], unpack(ARGV, 2, first_update - 1)) end
if first_update > #ARGV then return last end
local updates = {}
local seq, added = last, 0
for i = first_update, #ARGV do
  seq = seq + 1
  redis.call('XADD', KEYS[1], string.format('%d-0', seq), 'u', ARGV[i])
  added = added + #ARGV[i]
  updates[#updates + 1] = ARGV[i]
end
redis.call('HSET', KEYS[2], 'last_seq', string.format('%d', seq))
redis.call('HINCRBY', KEYS[2], 'size', added)
redis.call('SPUBLISH', KEYS[4], cmsgpack.pack({2, last + 1, updates}))
return seq
"""

# KEYS: log, meta, base. ARGV: merged, through_seq. Returns 1 done, 0 stale, -1 past last_seq.
_COMPACT = """
local meta = redis.call('HMGET', KEYS[2], 'base_seq', 'last_seq')
local through = tonumber(ARGV[2])
if through <= tonumber(meta[1] or '0') then return 0 end
if through > tonumber(meta[2] or '0') then return -1 end
redis.call('SET', KEYS[3], ARGV[1])
redis.call('XTRIM', KEYS[1], 'MINID', string.format('%d-0', through + 1))
local size = #ARGV[1]
for _, entry in ipairs(redis.call('XRANGE', KEYS[1], '-', '+')) do
  size = size + #entry[2][2]
end
redis.call('HSET', KEYS[2], 'base_seq', ARGV[2], 'size', size)
return 1
"""

# KEYS: log, meta, base, marks. Returns {last_seq, size, base_seq, base, {updates}, {marks}}.
_LOAD = """
local meta = redis.call('HMGET', KEYS[2], 'last_seq', 'size', 'base_seq')
local base_seq = tonumber(meta[3] or '0')
local base = ''
if base_seq > 0 then base = redis.call('GET', KEYS[3]) end
local updates = {}
for _, entry in ipairs(redis.call('XRANGE', KEYS[1], '-', '+')) do
  updates[#updates + 1] = entry[2][2]
end
return {tonumber(meta[1] or '0'), tonumber(meta[2] or '0'), base_seq, base, updates,
        redis.call('HGETALL', KEYS[4])}
"""

# KEYS: log, meta. ARGV: after_seq. Returns {base_seq, {seq, update, seq, update, ...}}.
_READ = """
local base_seq = tonumber(redis.call('HGET', KEYS[2], 'base_seq') or '0')
if tonumber(ARGV[1]) < base_seq then return {base_seq, {}} end
local out = {}
for _, entry in ipairs(redis.call('XRANGE', KEYS[1], string.format('%d-0', ARGV[1] + 1), '+')) do
  out[#out + 1] = tonumber(string.match(entry[1], '^(%d+)-'))
  out[#out + 1] = entry[2][2]
end
return {base_seq, out}
"""

# KEYS: snapshot, marks. ARGV: update, ts, snapshot_id.
_SAVE_SNAPSHOT = """
redis.call('HSET', KEYS[1], 'u', ARGV[1], 'ts', ARGV[2])
redis.call('HSET', KEYS[2], 'snapshot_through', ARGV[3])
return 1
"""

# KEYS: lease. ARGV: holder.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def board_key(room_id: str, board: str, part: str) -> str:
    """The key of one part of a board (``log``, ``meta``, ``marks``, ``base``, ``snap:<id>``,
    ``compactor``), under the room's hash tag."""
    return f"room:{{{room_id}}}:board:{board}:{part}"


def wake_channel(room_id: str, board: str) -> str:
    """The board's sharded pub/sub channel (subscribe with SSUBSCRIBE on the slot's owner)."""
    return board_key(room_id, board, "wake")


class RedisBoardStore:
    """:class:`whiteboard.BoardStore` on a Redis Cluster, through ``router``.

    Args:
        router: runs a board's commands on its slot's master (not closed by :meth:`close`: the
            composition root owns it).
        unavailable: the router's exception types for an unreachable cluster (e.g.
            ``(signaling.redis_cluster.ClusterUnavailable,)``); they and every
            ``redis.exceptions.RedisError`` become :class:`BoardStoreUnavailable`.
        replica_wait: what follows every write on its connection (``WAIT`` for replicas, see
            the module); None: nothing (no replica holds a write before it is acknowledged).
        covered: whether the cluster has a live master for every slot (for :meth:`ready`, e.g.
            ``lambda: router.covered``); by default always.

    Raises:
        BoardStoreUnavailable: from any call when the cluster cannot be reached or fails (a
            failover in progress included), or after :meth:`close`. Each write is one command or
            script, so it took effect whole or not at all; only a lost reply leaves which one
            unknown, and writing again is safe (a Yjs document ignores an update it already has).
    """

    def __init__(
        self,
        router: KeyRouter,
        *,
        unavailable: tuple[type[BaseException], ...] = (),
        replica_wait: ReplicaWait | None = None,
        covered: Callable[[], bool] | None = None,
    ) -> None:
        self.router = router
        self.replica_wait = replica_wait
        self._unavailable: tuple[type[BaseException], ...] = (RedisError, *unavailable)
        self._covered = covered
        self._open = True

    async def load(self, room_id: str, board: str) -> StoredBoard:
        """The base (if compacted) then the later updates, the last seq (0 when never written),
        their total bytes and the marks."""
        keys = [board_key(room_id, board, part) for part in ("log", "meta", "base", "marks")]
        last_seq, size, base_seq, base, updates, marks = await self._command(
            room_id, board, "load", lambda pipe: pipe.eval(_LOAD, len(keys), *keys)
        )
        return StoredBoard(
            ([base] if base_seq else []) + list(updates),
            int(last_seq),
            int(size),
            {marks[i].decode(): int(marks[i + 1]) for i in range(0, len(marks), 2)},
        )

    async def append(
        self,
        room_id: str,
        board: str,
        updates: Sequence[bytes],
        marks: Mapping[str, int] | None = None,
    ) -> int:
        """Append ``updates`` after the board's last seq, set ``marks`` and publish the wake-up,
        in one script, then wait for the replicas; returns the last update's seq (the board's
        last seq if ``updates`` is empty: then nothing is published). The updates have seqs
        ``last - len(updates) + 1`` through ``last``.

        Raises:
            BoardStoreUnavailable: the cluster failed (see the class).
        """
        args: list[str | int | bytes] = [len(marks or {})]
        for name, value in (marks or {}).items():
            args += [name, int(value)]
        args += updates
        keys = [board_key(room_id, board, part) for part in ("log", "meta", "marks", "wake")]
        last = await self._write(
            room_id, board, "append", lambda pipe: pipe.eval(_APPEND, len(keys), *keys, *args)
        )
        return int(last)

    async def read(
        self, room_id: str, board: str, after_seq: int
    ) -> list[tuple[int, bytes]] | None:
        """The updates with a seq above ``after_seq`` as ``(seq, update)``, oldest first; None
        when compaction merged some of them into the base (``after_seq`` is below the base's seq:
        load the board instead).

        Raises:
            BoardStoreUnavailable: the cluster failed.
        """
        after_seq = max(after_seq, 0)
        keys = [board_key(room_id, board, "log"), board_key(room_id, board, "meta")]
        base_seq, flat = await self._command(
            room_id, board, "read", lambda pipe: pipe.eval(_READ, len(keys), *keys, after_seq)
        )
        if after_seq < int(base_seq):
            return None
        return [(int(flat[i]), flat[i + 1]) for i in range(0, len(flat), 2)]

    async def set_marks(self, room_id: str, board: str, marks: Mapping[str, int]) -> None:
        """Set ``marks`` (one HSET); other marks stay."""
        if marks:
            items: list[str | int] = []
            for name, value in marks.items():
                items += [name, int(value)]
            key = board_key(room_id, board, "marks")
            await self._write(room_id, board, "set marks", lambda pipe: pipe.hset(key, items=items))

    async def compact(self, room_id: str, board: str, merged: bytes, through_seq: int) -> None:
        """Make ``merged`` (the merge of every update up to ``through_seq``) the board's base and
        drop those updates; later ones stay. A no-op when the base is already at or past
        ``through_seq`` (a slower compactor never moves it back).

        Raises:
            BoardStoreUnavailable: nothing changed.
            ValueError: ``through_seq`` is past the board's last seq (nothing changed).
        """
        keys = [board_key(room_id, board, part) for part in ("log", "meta", "base")]
        done = await self._write(
            room_id,
            board,
            "compact",
            lambda pipe: pipe.eval(_COMPACT, len(keys), *keys, merged, through_seq),
        )
        if int(done) == -1:
            raise ValueError(f"board {room_id}/{board} has no update {through_seq}")

    async def save_snapshot(
        self, room_id: str, board: str, snapshot_id: int, update: bytes, ts: int
    ) -> None:
        """Keep ``update`` as snapshot ``snapshot_id`` (``ts`` in epoch ms) and set the
        ``snapshot_through`` mark, in one script."""
        keys = [
            board_key(room_id, board, f"snap:{snapshot_id}"),
            board_key(room_id, board, "marks"),
        ]
        await self._write(
            room_id,
            board,
            "save snapshot",
            lambda pipe: pipe.eval(_SAVE_SNAPSHOT, len(keys), *keys, update, ts, snapshot_id),
        )

    async def snapshot(self, room_id: str, board: str, snapshot_id: int) -> bytes | None:
        key = board_key(room_id, board, f"snap:{snapshot_id}")
        data: bytes | None = await self._command(
            room_id, board, "read snapshot", lambda pipe: pipe.hget(key, "u")
        )
        return data

    async def claim_compaction(self, room_id: str, board: str, holder: str, ttl_ms: int) -> bool:
        """Take the board's compaction lease for ``ttl_ms`` unless someone holds it, so one
        worker across the nodes compacts a board at a time; True when ``holder`` got it. (No
        ``WAIT``: a lease lost in a failover only lets a second compactor run, and a compaction
        older than the base changes nothing.)

        Raises:
            BoardStoreUnavailable: the cluster failed (the lease was not taken).
        """
        key = board_key(room_id, board, "compactor")
        got = await self._command(
            room_id,
            board,
            "claim compaction",
            lambda pipe: pipe.set(key, holder, nx=True, px=ttl_ms),
        )
        return bool(got)

    async def release_compaction(self, room_id: str, board: str, holder: str) -> bool:
        """Give the lease back if ``holder`` still holds it (it may have expired and been taken
        by another); True when it was released.

        Raises:
            BoardStoreUnavailable: the cluster failed (the lease expires by itself).
        """
        key = board_key(room_id, board, "compactor")
        released = await self._command(
            room_id,
            board,
            "release compaction",
            lambda pipe: pipe.eval(_RELEASE, 1, key, holder),
        )
        return bool(released)

    def ready(self) -> bool:
        """Until :meth:`close`, while ``covered`` says so; a failing cluster shows as
        BoardStoreUnavailable from calls."""
        return self._open and (self._covered is None or self._covered())

    async def close(self) -> None:
        """Refuse further calls (the router stays open: its owner closes it)."""
        self._open = False

    # -- running commands ----------------------------------------------------------------------

    async def _command(
        self, room_id: str, board: str, what: str, build: Callable[[Any], object]
    ) -> Any:
        """The reply of the one command ``build`` queues (no ``WAIT``)."""
        replies = await self._run(room_id, board, what, build)
        return replies[0]

    async def _write(
        self, room_id: str, board: str, what: str, build: Callable[[Any], object]
    ) -> Any:
        """The reply of the one write ``build`` queues, once the replica wait on the same
        connection returned (a write is acknowledged even when fewer replicas confirmed it in
        time)."""
        wait = self.replica_wait

        def build_and_wait(pipe: Any) -> None:
            build(pipe)
            if wait is not None:
                wait.queue(pipe)

        replies = await self._run(room_id, board, what, build_and_wait)
        if wait is not None:
            wait.confirm(replies, 1, f"board {room_id}/{board}: {what}")
        return replies[0]

    async def _run(
        self, room_id: str, board: str, what: str, build: Callable[[Any], object]
    ) -> list[Any]:
        if not self._open:
            raise BoardStoreUnavailable(f"redis board store: {what} after close")
        try:
            return await self.router.run(board_key(room_id, board, "log"), build)
        except self._unavailable as exc:
            raise BoardStoreUnavailable(f"redis board store: {what} failed: {exc}") from exc
