"""The event store interface: one append-only log per room.

Adapters: :class:`signaling.sqlite_store.SqliteEventStore` (embedded default); a Redis Cluster
adapter comes with scale-out. The rest of the server sees only this interface.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from rooms import Event, Record


class AppendConflict(Exception):
    """The room's log moved past ``expected_last_id``: re-read, re-decide, retry."""

    def __init__(self, room_id: str, expected_last_id: int) -> None:
        super().__init__(f"room {room_id!r} log is past id {expected_last_id}")
        self.room_id = room_id
        self.expected_last_id = expected_last_id


class StoreUnavailable(Exception):
    """The store cannot take or serve events now (disk error, cluster down)."""


class EventStore(Protocol):
    """An append-only, per-room, gapless event log.

    Ids are integers from 1 per room. ``append`` is compare-and-append: it commits only if the
    room's newest id is ``expected_last_id``, so rules decided against a state stay valid.
    """

    async def append(
        self, room_id: str, events: Sequence[Event], *, expected_last_id: int, ts: int
    ) -> list[Record]:
        """Durably append ``events`` with ids ``expected_last_id + 1 ...`` and time ``ts`` (ms).

        Returns the records once committed.

        Raises:
            AppendConflict: the log's newest id is not ``expected_last_id``.
            StoreUnavailable: the store failed; nothing was appended.
        """
        ...

    async def read(self, room_id: str, after_id: int, limit: int | None = None) -> list[Record]:
        """Records with id > ``after_id`` in id order, at most ``limit``.

        Raises:
            StoreUnavailable: the store failed.
        """
        ...

    async def first_id(self, room_id: str) -> int:
        """The oldest id still in the log (1 when never trimmed; 0 for an empty log)."""
        ...

    def ready(self) -> bool:
        """Whether the store can serve now (for ``/readyz``)."""
        ...

    async def close(self) -> None: ...
