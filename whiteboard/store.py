"""The board store interface: each board's log of Yjs updates, compaction, snapshots, marks.

A board's log is a sequence of Yjs v1 updates numbered from 1 (``seq``). After compaction the
first remaining entry is one merged update standing for everything up to its ``seq``. Marks are
small named integers kept with the board (``cleared_through``, ``snapshot_through``: the id of the
newest room event the service carried out). Adapters: :class:`whiteboard.SqliteBoardStore`
(embedded); a Redis Cluster adapter comes with scale-out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol


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

    async def set_marks(self, room_id: str, board: str, marks: Mapping[str, int]) -> None: ...

    async def compact(self, room_id: str, board: str, merged: bytes, through_seq: int) -> None:
        """Replace the updates up to ``through_seq`` by ``merged`` (their merge)."""
        ...

    async def save_snapshot(
        self, room_id: str, board: str, snapshot_id: int, update: bytes, ts: int
    ) -> None:
        """Keep ``update`` as snapshot ``snapshot_id`` and set the ``snapshot_through`` mark."""
        ...

    async def snapshot(self, room_id: str, board: str, snapshot_id: int) -> bytes | None: ...

    def ready(self) -> bool: ...

    async def close(self) -> None: ...
