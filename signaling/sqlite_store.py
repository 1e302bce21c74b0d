"""The embedded event store: SQLite in WAL mode under ``--data-dir``.

An append is one transaction; it is acknowledged only after COMMIT, so a SIGKILL of the process
loses nothing acknowledged (WAL with ``synchronous=NORMAL`` survives a process crash; a power cut
may lose the last transactions, see docs/decisions/0002-sqlite-when-embedded.md).
Calls run on the event loop's thread: a small append commits in tens of microseconds.

Checkpoints (copying the WAL into the database, with an fsync) take milliseconds; SQLite's automatic
checkpoint would run them inside a commit on the event loop, stalling every room. They run instead
on a thread of their own with its own connection (``PRAGMA wal_checkpoint(PASSIVE)`` never blocks
writers), every ``checkpoint_interval_s``, as the board store's do (:mod:`whiteboard.sqlite_store`).
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import msgpack

from rooms import Event, Record, event_from_data

from .store import AppendConflict, Snapshot, StoreUnavailable

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    room_id TEXT NOT NULL,
    id INTEGER NOT NULL,
    ts INTEGER NOT NULL,
    type TEXT NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (room_id, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS snapshots (
    room_id TEXT PRIMARY KEY,
    last_id INTEGER NOT NULL,
    data BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS breakout_groups (
    owner TEXT NOT NULL,
    name TEXT NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (owner, name)
) WITHOUT ROWID;
"""


class SqliteEventStore:
    """:class:`signaling.store.EventStore` on one SQLite file.

    Raises:
        StoreUnavailable: from any call when SQLite fails (disk full, file removed).
    """

    #: One process owns the file (the embedded node): nobody else appends.
    shared = False

    def __init__(self, path: Path, checkpoint_interval_s: float = 0.5) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA wal_autocheckpoint=0")
        self._db.executescript(_SCHEMA)
        self._stop = threading.Event()
        self._checkpointer = threading.Thread(
            target=self._checkpoint_loop,
            args=(path, checkpoint_interval_s),
            name="room-log-checkpoint",
            daemon=True,
        )
        self._checkpointer.start()
        self._open = True

    async def append(
        self, room_id: str, events: Sequence[Event], *, expected_last_id: int, ts: int
    ) -> list[Record]:
        rows = [
            (room_id, expected_last_id + i, ts, e.type, msgpack.packb(e.to_data()))
            for i, e in enumerate(events, start=1)
        ]
        with self._transaction("append"):
            (last,) = self._db.execute(
                "SELECT COALESCE(MAX(id), 0) FROM events WHERE room_id = ?", (room_id,)
            ).fetchone()
            if last != expected_last_id:
                raise AppendConflict(room_id, expected_last_id)
            self._db.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?)", rows)
        return [Record(row[1], ts, e) for row, e in zip(rows, events, strict=True)]

    async def read(self, room_id: str, after_id: int, limit: int | None = None) -> list[Record]:
        try:
            cur = self._db.execute(
                "SELECT id, ts, type, data FROM events WHERE room_id = ? AND id > ? "
                "ORDER BY id LIMIT ?",
                (room_id, after_id, -1 if limit is None else limit),
            )
            rows = cur.fetchall()
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"sqlite read failed: {exc}") from exc
        return [
            Record(id_, ts, event_from_data(type_, msgpack.unpackb(data)))
            for id_, ts, type_, data in rows
        ]

    async def first_id(self, room_id: str) -> int:
        try:
            (first,) = self._db.execute(
                "SELECT COALESCE(MIN(id), 0) FROM events WHERE room_id = ?", (room_id,)
            ).fetchone()
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"sqlite read failed: {exc}") from exc
        return int(first)

    async def snapshot(self, room_id: str) -> Snapshot | None:
        try:
            row = self._db.execute(
                "SELECT last_id, data FROM snapshots WHERE room_id = ?", (room_id,)
            ).fetchone()
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"sqlite read failed: {exc}") from exc
        return None if row is None else Snapshot(int(row[0]), bytes(row[1]))

    async def save_snapshot(self, room_id: str, snapshot: Snapshot, *, keep: int) -> int:
        if keep < 1:
            raise ValueError(f"keep must be at least 1, not {keep}")
        with self._transaction("snapshot"):
            self._db.execute(
                "INSERT INTO snapshots VALUES (?, ?, ?) ON CONFLICT (room_id) DO UPDATE "
                "SET last_id = excluded.last_id, data = excluded.data "
                "WHERE excluded.last_id > snapshots.last_id",
                (room_id, snapshot.last_id, snapshot.data),
            )
            (stored,) = self._db.execute(
                "SELECT last_id FROM snapshots WHERE room_id = ?", (room_id,)
            ).fetchone()
            self._db.execute(
                "DELETE FROM events WHERE room_id = ? AND id <= ?", (room_id, stored - keep)
            )
        return int(stored)

    async def save_groups(self, owner: str, name: str, data: bytes, *, max_sets: int) -> bool:
        with self._transaction("groups save"):
            (others,) = self._db.execute(
                "SELECT COUNT(*) FROM breakout_groups WHERE owner = ? AND name != ?", (owner, name)
            ).fetchone()
            if others >= max_sets:
                return False
            self._db.execute(
                "INSERT INTO breakout_groups VALUES (?, ?, ?) ON CONFLICT (owner, name) "
                "DO UPDATE SET data = excluded.data",
                (owner, name, data),
            )
        return True

    async def groups(self, owner: str) -> dict[str, bytes]:
        try:
            rows = self._db.execute(
                "SELECT name, data FROM breakout_groups WHERE owner = ? ORDER BY name", (owner,)
            ).fetchall()
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"sqlite read failed: {exc}") from exc
        return {str(name): bytes(data) for name, data in rows}

    async def delete_groups(self, owner: str, name: str) -> bool:
        with self._transaction("groups delete"):
            cur = self._db.execute(
                "DELETE FROM breakout_groups WHERE owner = ? AND name = ?", (owner, name)
            )
        return cur.rowcount > 0

    @contextlib.contextmanager
    def _transaction(self, what: str) -> Iterator[None]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``; rolled back when the body raises.

        Raises:
            StoreUnavailable: SQLite failed (nothing was written).
        """
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"sqlite {what} failed: {exc}") from exc

    def _checkpoint_loop(self, path: Path, interval_s: float) -> None:
        db = sqlite3.connect(path, isolation_level=None)
        try:
            while not self._stop.wait(interval_s):
                try:
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                except sqlite3.Error:
                    continue  # busy or failing: the next round tries again
        finally:
            db.close()

    def ready(self) -> bool:
        if not self._open:
            return False
        try:
            self._db.execute("SELECT 1").fetchone()
        except sqlite3.Error:
            return False
        return True

    async def close(self) -> None:
        if self._open:
            self._open = False
            self._stop.set()
            self._checkpointer.join(5)
            self._db.close()
