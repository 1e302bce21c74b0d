"""The board store interface: each board's log of Yjs updates, compaction, snapshots, marks.

A board's log is a sequence of Yjs v1 updates numbered from 1 (``seq``). After compaction the
first remaining entry is one merged update (the base) standing for everything up to its ``seq``.
Marks are small named integers kept with the board (``cleared_through``, ``snapshot_through``: the
id of the newest room event the service carried out). Adapters: :class:`whiteboard.SqliteBoardStore`
(embedded, one process) and :class:`whiteboard.RedisBoardStore` (Redis Cluster, shared by every
node of a scale-out deployment, which is why the interface has :meth:`BoardStore.read` for
catching up on other nodes' appends and a compaction lease).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


class BoardStoreUnavailable(OSError):
    """The store could not be reached or failed; nothing was written (an I/O error)."""


@dataclass(frozen=True, slots=True)
class StoredBoard:
    """A board as loaded: its updates oldest first, the last ``seq``, total bytes and marks."""

    updates: list[bytes]
    last_seq: int
    size: int
    marks: dict[str, int] = field(default_factory=dict)


class BoardStore(Protocol):
    async def load(self, room_id: str, board: str) -> StoredBoard:
        """Everything stored for a board (an empty board when it was never written)."""
        ...

    async def append(
        self,
        room_id: str,
        board: str,
        updates: Sequence[bytes],
        marks: Mapping[str, int] | None = None,
    ) -> int:
        """Append updates (and set ``marks``) in one transaction; returns the last one's seq
        once committed. Raises BoardStoreUnavailable."""
        ...

    async def read(
        self, room_id: str, board: str, after_seq: int
    ) -> list[tuple[int, bytes]] | None:
        """The updates with a seq above ``after_seq`` as ``(seq, update)``, oldest first (empty
        when there are none); None when compaction merged some of them into the base (load the
        board instead). Raises BoardStoreUnavailable."""
        ...

    async def set_marks(self, room_id: str, board: str, marks: Mapping[str, int]) -> None: ...

    async def compact(self, room_id: str, board: str, merged: bytes, through_seq: int) -> None:
        """Replace the updates up to ``through_seq`` by ``merged`` (their merge). Changes nothing
        when the base is already at or past ``through_seq`` (a slower compactor never moves it
        back). Raises BoardStoreUnavailable, or ValueError when ``through_seq`` is past the
        board's last seq."""
        ...

    async def save_snapshot(
        self, room_id: str, board: str, snapshot_id: int, update: bytes, ts: int
    ) -> None:
        """Keep ``update`` as snapshot ``snapshot_id`` and set the ``snapshot_through`` mark."""
        ...

    async def snapshot(self, room_id: str, board: str, snapshot_id: int) -> bytes | None: ...

    async def claim_compaction(self, room_id: str, board: str, holder: str, ttl_ms: int) -> bool:
        """Take the board's compaction lease for ``ttl_ms`` unless another holder has it; True
        when ``holder`` got it (so one node at a time compacts a board). Raises
        BoardStoreUnavailable."""
        ...

    async def release_compaction(self, room_id: str, board: str, holder: str) -> bool:
        """Give the lease back if ``holder`` still has it; True when it was released. Raises
        BoardStoreUnavailable."""
        ...

    def ready(self) -> bool: ...

    async def close(self) -> None: ...


class KeyRouter(Protocol):
    """Runs commands on the Redis Cluster master that owns a key's slot (what
    :class:`whiteboard.RedisBoardStore` needs; ``signaling.redis_cluster.ClusterRouter`` is one).
    """

    async def run(self, key: str, build: Callable[[Any], Any]) -> list[Any]:
        """Run the commands ``build(pipeline)`` queues on a redis-py pipeline
        (``transaction=False``) on ONE connection of ``key``'s slot owner, following redirects;
        returns their replies, bytes not decoded.

        Raises ``redis.exceptions.RedisError`` (a command failed) or a router-specific exception
        when the owner cannot be reached; the store maps both to BoardStoreUnavailable (it is told
        the router's exception types).
        """
        ...


class ReplicaWait(Protocol):
    """What a Redis store does after each write to keep it through a failover: ``WAIT`` for
    replicas on the write's connection, then check how many confirmed
    (``signaling.redis_log.ReplicaWait`` is one; the room log's store uses the same).
    """

    def queue(self, pipe: Any) -> None:
        """Queue ``WAIT`` on ``pipe``, the pipeline that wrote (nothing when no replica is asked
        for)."""
        ...

    def confirm(self, replies: Sequence[Any], at: int, what: str) -> None:
        """Check WAIT's reply, ``replies[at]`` (nothing when no WAIT was queued); a write that
        fewer replicas confirmed than asked is still acknowledged, and counted and logged as
        ``what``."""
        ...
