"""The embedded board store: SQLite in WAL mode under ``--data-dir`` (whiteboards.sqlite3).

An append is one transaction and the update is relayed only after COMMIT, so a SIGKILL of the
process loses no update anyone received (WAL with ``synchronous=NORMAL`` survives a process
crash; see docs/decisions/0002-sqlite-when-embedded.md). Calls run on the event loop's thread.

Checkpoints (copying the WAL into the database, with an fsync) take milliseconds; SQLite's automatic
checkpoint would run them inside a commit on the event loop, stalling every board. They run instead
on a thread of their own with its own connection (``PRAGMA wal_checkpoint(PASSIVE)`` never blocks
writers), every ``checkpoint_interval_s``.

Compaction deletes a board's rows up to ``through_seq`` and stores the merged update as the row
``through_seq``, so the board's first row is its base once its seq is above 1 (a board never
compacted starts at 1; a compaction through 1 would merge one update and is skipped). One process
owns the file, so the compaction lease is always granted.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

from .store import BoardStoreUnavailable, StoredBoard

_SCHEMA = """
CREATE TABLE IF NOT EXISTS board_updates (
    room_id TEXT NOT NULL,
    board TEXT NOT NULL,
    seq INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (room_id, board, seq)
);
CREATE TABLE IF NOT EXISTS board_marks (
    room_id TEXT NOT NULL,
    board TEXT NOT NULL,
    name TEXT NOT NULL,
    value INTEGER NOT NULL,
    PRIMARY KEY (room_id, board, name)
);
CREATE TABLE IF NOT EXISTS board_snapshots (
    room_id TEXT NOT NULL,
    board TEXT NOT NULL,
    id INTEGER NOT NULL,
    ts INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (room_id, board, id)
);
"""
_FIRST_AND_LAST = "SELECT MIN(seq), MAX(seq) FROM board_updates WHERE room_id = ? AND board = ?"
_SET_MARK = (
    "INSERT INTO board_marks VALUES (?, ?, ?, ?) "
    "ON CONFLICT (room_id, board, name) DO UPDATE SET value = excluded.value"
)

T = TypeVar("T")


class SqliteBoardStore:
    """:class:`whiteboard.BoardStore` on one SQLite file.

    Raises:
        BoardStoreUnavailable: from any call when SQLite fails (disk full, file removed).
    """

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
            name="board-store-checkpoint",
            daemon=True,
        )
        self._checkpointer.start()
        #: The last seq of each board written through this store (one process owns the file).
        self._last_seq: dict[tuple[str, str], int] = {}
        self._open = True

    def _transaction(self, statements: Sequence[tuple[str, Sequence[object]]]) -> None:
        def run(db: sqlite3.Connection) -> None:
            for sql, args in statements:
                db.execute(sql, args)

        self._in_transaction(run)

    def _in_transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """``work(db)`` in one write transaction, rolled back when it raises (a ValueError from
        ``work`` is raised as is; nothing was written)."""
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                result = work(db)
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise BoardStoreUnavailable(f"sqlite write failed: {exc}") from exc
        return result

    async def load(self, room_id: str, board: str) -> StoredBoard:
        try:
            rows = self._db.execute(
                "SELECT seq, data FROM board_updates WHERE room_id = ? AND board = ? ORDER BY seq",
                (room_id, board),
            ).fetchall()
            marks = self._db.execute(
                "SELECT name, value FROM board_marks WHERE room_id = ? AND board = ?",
                (room_id, board),
            ).fetchall()
        except sqlite3.Error as exc:
            raise BoardStoreUnavailable(f"sqlite read failed: {exc}") from exc
        updates = [bytes(data) for _, data in rows]
        return StoredBoard(
            updates,
            rows[-1][0] if rows else 0,
            sum(len(u) for u in updates),
            {name: int(value) for name, value in marks},
        )

    async def append(
        self,
        room_id: str,
        board: str,
        updates: Sequence[bytes],
        marks: Mapping[str, int] | None = None,
    ) -> int:
        key = (room_id, board)
        last = self._last_seq.get(key)
        if last is None:
            try:
                (last,) = self._db.execute(
                    "SELECT COALESCE(MAX(seq), 0) FROM board_updates "
                    "WHERE room_id = ? AND board = ?",
                    key,
                ).fetchone()
            except sqlite3.Error as exc:
                raise BoardStoreUnavailable(f"sqlite read failed: {exc}") from exc
        first = int(last) + 1
        inserts = [
            ("INSERT INTO board_updates VALUES (?, ?, ?, ?)", (room_id, board, seq, update))
            for seq, update in enumerate(updates, start=first)
        ]
        statements = inserts + [
            (_SET_MARK, (room_id, board, k, v)) for k, v in (marks or {}).items()
        ]
        if len(statements) == 1:
            try:
                self._db.execute(*statements[0])  # one statement: its own transaction
            except sqlite3.Error as exc:
                self._last_seq.pop(key, None)
                raise BoardStoreUnavailable(f"sqlite write failed: {exc}") from exc
        else:
            try:
                self._transaction(statements)
            except BoardStoreUnavailable:
                self._last_seq.pop(key, None)
                raise
        self._last_seq[key] = first + len(updates) - 1
        return self._last_seq[key]

    async def set_marks(self, room_id: str, board: str, marks: Mapping[str, int]) -> None:
        self._transaction([(_SET_MARK, (room_id, board, k, v)) for k, v in marks.items()])

    async def read(
        self, room_id: str, board: str, after_seq: int
    ) -> list[tuple[int, bytes]] | None:
        """The updates with a seq above ``after_seq`` as ``(seq, update)``, oldest first; None
        when ``after_seq`` is below the base's seq (some of them were merged into it)."""
        try:
            first, _ = self._db.execute(_FIRST_AND_LAST, (room_id, board)).fetchone()
            if first is not None and first > 1 and after_seq < first:
                return None
            rows = self._db.execute(
                "SELECT seq, data FROM board_updates "
                "WHERE room_id = ? AND board = ? AND seq > ? ORDER BY seq",
                (room_id, board, after_seq),
            ).fetchall()
        except sqlite3.Error as exc:
            raise BoardStoreUnavailable(f"sqlite read failed: {exc}") from exc
        return [(int(seq), bytes(data)) for seq, data in rows]

    async def compact(self, room_id: str, board: str, merged: bytes, through_seq: int) -> None:
        """Make ``merged`` the row ``through_seq`` in place of the rows up to it. Changes nothing
        when the first row is at or past ``through_seq`` (an older compaction, or one update).

        Raises:
            BoardStoreUnavailable: SQLite failed; nothing changed.
            ValueError: ``through_seq`` is past the board's last seq; nothing changed.
        """

        def run(db: sqlite3.Connection) -> None:
            first, last = db.execute(_FIRST_AND_LAST, (room_id, board)).fetchone()
            if through_seq <= (first or 0):
                return
            if through_seq > (last or 0):
                raise ValueError(f"board {room_id}/{board} has no update {through_seq}")
            db.execute(
                "DELETE FROM board_updates WHERE room_id = ? AND board = ? AND seq <= ?",
                (room_id, board, through_seq),
            )
            db.execute(
                "INSERT INTO board_updates VALUES (?, ?, ?, ?)",
                (room_id, board, through_seq, merged),
            )

        self._in_transaction(run)

    async def save_snapshot(
        self, room_id: str, board: str, snapshot_id: int, update: bytes, ts: int
    ) -> None:
        self._transaction(
            [
                (
                    "INSERT OR REPLACE INTO board_snapshots VALUES (?, ?, ?, ?, ?)",
                    (room_id, board, snapshot_id, ts, update),
                ),
                (_SET_MARK, (room_id, board, "snapshot_through", snapshot_id)),
            ]
        )

    async def snapshot(self, room_id: str, board: str, snapshot_id: int) -> bytes | None:
        try:
            row = self._db.execute(
                "SELECT data FROM board_snapshots WHERE room_id = ? AND board = ? AND id = ?",
                (room_id, board, snapshot_id),
            ).fetchone()
        except sqlite3.Error as exc:
            raise BoardStoreUnavailable(f"sqlite read failed: {exc}") from exc
        return None if row is None else bytes(row[0])

    async def claim_compaction(self, room_id: str, board: str, holder: str, ttl_ms: int) -> bool:
        """Always True: one process owns the file, and its board compacts one at a time."""
        return True

    async def release_compaction(self, room_id: str, board: str, holder: str) -> bool:
        """Nothing to release (see :meth:`claim_compaction`); True."""
        return True

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
