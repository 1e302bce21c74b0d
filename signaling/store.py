"""The event store interface: one append-only log per room.

Adapters: :class:`signaling.sqlite_store.SqliteEventStore` (embedded default) and
:class:`signaling.redis_store.RedisEventStore` (``--redis-cluster``). The rest of the server sees
only this interface.

The store also keeps each staff member's saved breakout groups (:mod:`signaling.saved_groups`),
which belong to no room: they outlive it.

A log is trimmed only behind a stored :class:`Snapshot` of the room's state
(:func:`rooms.snapshot.state_to_data`), so loading a room is its snapshot plus the records after it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from rooms import Event, Record


class AppendConflict(Exception):
    """The room's log moved past ``expected_last_id``: fold what is newer, re-decide, retry.

    ``records``: the records after ``expected_last_id`` the store sent with the refusal, at most
    ``limit`` of them (a store may send none: then read them).
    """

    def __init__(
        self,
        room_id: str,
        expected_last_id: int,
        records: Sequence[Record] = (),
        limit: int = 0,
    ) -> None:
        super().__init__(f"room {room_id!r} log is past id {expected_last_id}")
        self.room_id = room_id
        self.expected_last_id = expected_last_id
        self.records = tuple(records)
        self.limit = limit


class StoreUnavailable(Exception):
    """The store cannot take or serve events now (disk error, cluster down)."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A room's state folded through record ``last_id``, as msgpack bytes of
    :func:`rooms.snapshot.state_to_data`."""

    last_id: int
    data: bytes


class EventStore(Protocol):
    """An append-only, per-room, gapless event log.

    Ids are integers from 1 per room. ``append`` is compare-and-append: it commits only if the
    room's newest id is ``expected_last_id``, so rules decided against a state stay valid.

    ``shared`` says whether other processes append to the same logs (several nodes on one Redis
    Cluster): a node's state may then be behind the log, and a decision that appends nothing is
    answered only after checking it is not (:meth:`signaling.hub.RoomHub`).
    """

    shared: bool

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

    async def snapshot(self, room_id: str) -> Snapshot | None:
        """The room's stored snapshot, None when it has none.

        Raises:
            StoreUnavailable: the store failed.
        """
        ...

    async def save_snapshot(self, room_id: str, snapshot: Snapshot, *, keep: int) -> int:
        """Store ``snapshot`` unless a newer one is stored, then trim the log behind the stored one.

        Records with ids up to the stored snapshot's ``last_id - keep`` are deleted, so the log
        still reaches ``keep`` (>= 1) records behind it for resumes, and its newest record stays.
        Storing and trimming are one atomic step: the log is never trimmed past a snapshot.

        Returns the stored snapshot's ``last_id`` (``snapshot.last_id`` or a newer one).

        Raises:
            ValueError: ``keep`` < 1.
            StoreUnavailable: the store failed; the log was not trimmed.
        """
        ...

    async def save_groups(self, owner: str, name: str, data: bytes, *, max_sets: int) -> bool:
        """Keep the saved breakout group set ``name`` of ``owner`` (a staff identity) as
        ``data`` (:class:`signaling.saved_groups.GroupSet` bytes), replacing one of that name.

        Returns False, storing nothing, when ``owner`` keeps ``max_sets`` other sets already.

        Raises:
            StoreUnavailable: the store failed; nothing was stored.
        """
        ...

    async def groups(self, owner: str) -> dict[str, bytes]:
        """Every saved group set of ``owner``: name -> data.

        Raises:
            StoreUnavailable: the store failed.
        """
        ...

    async def delete_groups(self, owner: str, name: str) -> bool:
        """Forget ``owner``'s set ``name``; False when there was none.

        Raises:
            StoreUnavailable: the store failed.
        """
        ...

    def ready(self) -> bool:
        """Whether the store can serve now (for ``/readyz``)."""
        ...

    async def close(self) -> None: ...
