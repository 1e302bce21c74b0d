"""Both embedded SQLite stores checkpoint their WAL on a thread of their own, never in a commit on
the event loop, and the WAL stays bounded however many appends the loop makes."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from rooms import ChatMessageEvent, Role
from signaling import SqliteEventStore
from whiteboard import SqliteBoardStore

ROUNDS = 12
APPENDS_PER_ROUND = 60
TEXT = "x" * 1500


@dataclass
class Traced:
    """Every statement run on every SQLite connection opened during a test, with its thread."""

    connections: list[sqlite3.Connection] = field(default_factory=list)
    statements: list[tuple[str, str]] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)

    def seen(self, sql: str) -> None:
        with self.changed:
            self.statements.append((threading.current_thread().name, sql))
            self.changed.notify_all()

    def checkpoints(self) -> list[str]:
        """The names of the threads that ran a checkpoint, in order."""
        return [thread for thread, sql in self.statements if "wal_checkpoint" in sql.lower()]


@pytest.fixture
def traced(monkeypatch: pytest.MonkeyPatch) -> Traced:
    seen = Traced()
    connect = sqlite3.connect

    def traced_connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        db = connect(*args, **kwargs)
        db.set_trace_callback(seen.seen)
        seen.connections.append(db)
        return db

    monkeypatch.setattr(sqlite3, "connect", traced_connect)
    return seen


Append = Callable[[int], Awaitable[object]]


async def room_log(path: Path) -> tuple[Append, Callable[[], Awaitable[None]], Path]:
    store = SqliteEventStore(path / "events.sqlite3", checkpoint_interval_s=0.01)

    async def append(i: int) -> object:
        event = ChatMessageEvent("s1", "Sam", Role.STUDENT, TEXT, None)
        return await store.append("r1", [event], expected_last_id=i, ts=1_700_000_000_000 + i)

    return append, store.close, path / "events.sqlite3-wal"


async def board_log(path: Path) -> tuple[Append, Callable[[], Awaitable[None]], Path]:
    store = SqliteBoardStore(path / "whiteboards.sqlite3", checkpoint_interval_s=0.01)

    async def append(i: int) -> object:
        return await store.append("r1", "main", [TEXT.encode() + str(i).encode()])

    return append, store.close, path / "whiteboards.sqlite3-wal"


def until_checkpointed(traced: Traced) -> None:
    """Block the event loop until a checkpoint that started from now on has finished (bounded:
    5 s): the checkpoints must not need the loop.

    The trace sees a statement start; the thread starts its next checkpoint only once the one
    before has returned, so the second start from now marks the end of the first.
    """
    with traced.changed:
        seen = len(traced.checkpoints())
        assert traced.changed.wait_for(lambda: len(traced.checkpoints()) >= seen + 2, timeout=5)


@pytest.mark.parametrize("make", [room_log, board_log], ids=["room_log", "board_log"])
async def test_the_wal_is_checkpointed_on_its_own_thread_and_stays_bounded(
    make: Callable[[Path], Awaitable[tuple[Append, Callable[[], Awaitable[None]], Path]]],
    tmp_path: Path,
    traced: Traced,
) -> None:
    append, close, wal = await make(tmp_path)
    loop_db = traced.connections[0]
    try:
        # A commit on the loop's connection never checkpoints: SQLite's automatic one is off.
        assert loop_db.execute("PRAGMA wal_autocheckpoint").fetchone() == (0,)
        first_round = 0
        for round_ in range(ROUNDS):
            for i in range(APPENDS_PER_ROUND):
                await append(round_ * APPENDS_PER_ROUND + i)
            if round_ == 0:
                first_round = wal.stat().st_size
            until_checkpointed(traced)
        assert first_round > 0
        # A complete checkpoint lets the next commit write the WAL from its start again, so the
        # file never grows past a few rounds (without checkpoints it would hold all twelve).
        assert wal.stat().st_size <= 3 * first_round
        loop_thread = threading.current_thread().name
        assert traced.checkpoints()
        assert loop_thread not in traced.checkpoints()
    finally:
        await close()
