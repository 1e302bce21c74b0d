"""The hub's fan-out by place (docs/protocol.md, "Changes of place"): in one delivered batch that
moves students between breakout rooms, each member gets exactly the events of its place at each
event, a moved member gets a ``view`` right after the event that moved it and nothing at or below
that view's id afterwards, and a resume across a change of place is answered with ``welcome``.

The hub runs on the embedded store and the in-process bus; its connections are recorded."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import msgpack

from rooms import (
    BreakoutClosedEvent,
    BreakoutMove,
    BreakoutMovedEvent,
    BreakoutOpen,
    BreakoutOpenedEvent,
    ChatMessageEvent,
    ChatSend,
    Event,
    Participant,
    Role,
)
from signaling.bus import LocalBus
from signaling.hub import HubSettings, RoomHub
from signaling.metrics import Metrics
from signaling.sqlite_store import SqliteEventStore

RED, BLUE = "Red team", "Blue team"
TEACHER = Participant("t", "T", Role.TEACHER)
ALICE = Participant("alice", "Alice", Role.STUDENT)
BOB = Participant("bob", "Bob", Role.STUDENT)
CAROL = Participant("carol", "Carol", Role.STUDENT)


class RecordedOutbox:
    """What a connection was sent, decoded, in order."""

    def __init__(self) -> None:
        self.frames: list[dict[str, Any]] = []
        self.closed = False

    def put(self, frame: bytes, wire: bytes | None = None) -> bool:
        self.frames.append(msgpack.unpackb(frame))
        return True

    def put_many(self, frames: list[bytes], wire: bytes) -> bool:
        for frame in frames:
            self.put(frame)
        return True

    async def close(self, code: int, reason: str, final_frame: bytes | None = None) -> None:
        self.closed = True

    def seen(self) -> list[tuple[str, int]]:
        """("event", id) and ("view", last_id) in the order they were sent, after the greeting."""
        return [
            (f["t"], f["id"] if f["t"] == "event" else f["last_id"])
            for f in self.frames
            if f["t"] in ("event", "view")
        ]


def said(name: str, room: str | None) -> ChatMessageEvent:
    return ChatMessageEvent(name, name, Role.STUDENT, f"{name} in {room}", None, room)


async def append(hub: RoomHub, store: SqliteEventStore, events: list[Event]) -> int:
    """Append ``events`` as another node would, and deliver them to the hub in one batch."""
    records = await store.append(
        hub.room_id, events, expected_last_id=hub.state.last_id, ts=1_000_000
    )
    hub.deliver(records)
    await asyncio.sleep(0.01)  # the end of the turn writes them out
    return records[-1].id


def test_a_batch_that_moves_students_reaches_each_one_in_the_place_of_each_event(
    tmp_path: Path,
) -> None:
    async def run() -> None:
        store = SqliteEventStore(tmp_path / "events.sqlite3")
        hub = RoomHub("class", store, LocalBus(), HubSettings(), Metrics())
        await hub.open()
        outboxes = {p.identity: RecordedOutbox() for p in (TEACHER, ALICE, BOB, CAROL)}
        members = {}
        for p in (TEACHER, ALICE, BOB, CAROL):
            members[p.identity] = await hub.join(p, outboxes[p.identity], None)  # type: ignore[arg-type]
        await asyncio.sleep(0.01)
        start = hub.state.last_id
        for outbox in outboxes.values():
            outbox.frames.clear()

        opened = BreakoutOpenedEvent(
            (RED, BLUE), "t", 1, ("br1-1", "br1-2"), {"alice": RED, "bob": BLUE}
        )
        last = await append(
            hub,
            store,
            [
                opened,  # start + 1
                said("alice", RED),  # + 2
                BreakoutMovedEvent("alice", BLUE, "t"),  # + 3
                said("bob", BLUE),  # + 4
                said("carol", None),  # + 5
            ],
        )
        assert last == start + 5
        s = start
        assert outboxes["alice"].seen() == [
            ("event", s + 1),
            ("view", s + 1),
            ("event", s + 2),
            ("event", s + 3),
            ("view", s + 3),
            ("event", s + 4),
        ]
        assert outboxes["bob"].seen() == [
            ("event", s + 1),
            ("view", s + 1),
            ("event", s + 3),
            ("event", s + 4),
        ]
        assert outboxes["carol"].seen() == [("event", s + 1), ("event", s + 3), ("event", s + 5)]
        assert outboxes["t"].seen() == [("event", s + i) for i in range(1, 6)]
        # Each view is of the room the student is in then.
        views = [f for f in outboxes["alice"].frames if f["t"] == "view"]
        assert [v["room"]["breakouts"]["members"]["alice"] for v in views] == [RED, BLUE]
        assert [m["text"] for m in views[1]["room"]["chat"]] == []  # blue had said nothing yet

        # Resuming across a change of place is a welcome; across none, a resume of one's place.
        back = RecordedOutbox()
        await hub.join(ALICE, back, s + 2)  # type: ignore[arg-type]
        assert back.frames[0]["t"] == "welcome"
        assert back.frames[0]["room"]["breakouts"]["members"]["alice"] == BLUE
        again = RecordedOutbox()
        await hub.join(ALICE, again, s + 3)  # type: ignore[arg-type]
        assert again.frames[0]["t"] == "resumed"
        assert again.seen() == [("event", s + 4)]

        # Closing brings everyone back: views for the two students who were away.
        for outbox in outboxes.values():
            outbox.frames.clear()
        closed = await append(hub, store, [BreakoutClosedEvent("t"), said("carol", None)])
        assert outboxes["alice"].seen() == [
            ("event", closed - 1),
            ("view", closed - 1),
            ("event", closed),
        ]
        assert outboxes["carol"].seen() == [("event", closed - 1), ("event", closed)]
        assert outboxes["t"].seen() == [("event", closed - 1), ("event", closed)]
        await hub.close()
        await store.close()

    asyncio.run(run())


def test_a_committed_batch_that_moves_a_student_is_fanned_out_event_by_event(
    tmp_path: Path,
) -> None:
    """Commands decided together in one batch (the plan's state is past all of them): each
    event still reaches the places it was made in."""

    async def run() -> None:
        store = SqliteEventStore(tmp_path / "events.sqlite3")
        hub = RoomHub("class", store, LocalBus(), HubSettings(), Metrics())
        await hub.open()
        outboxes = {p.identity: RecordedOutbox() for p in (TEACHER, ALICE, BOB, CAROL)}
        members = {}
        for p in (TEACHER, ALICE, BOB, CAROL):
            members[p.identity] = await hub.join(p, outboxes[p.identity], None)  # type: ignore[arg-type]
        await asyncio.sleep(0.01)
        opened = hub.submit(
            members["t"], 1, BreakoutOpen((RED, BLUE), members={"alice": RED, "bob": BLUE})
        )
        await opened
        for outbox in outboxes.values():
            outbox.frames.clear()
        s = hub.state.last_id
        done = [  # one batch: submitted in one turn
            hub.submit(members["alice"], 2, ChatSend("red line")),
            hub.submit(members["t"], 3, BreakoutMove("alice", BLUE)),
            hub.submit(members["alice"], 4, ChatSend("blue line")),
            hub.submit(members["carol"], 5, ChatSend("main line")),
        ]
        await asyncio.gather(*done)
        await asyncio.sleep(0.01)
        assert hub.state.last_id == s + 4
        acks = [("ack", f["ref"]) for f in outboxes["alice"].frames if f["t"] == "ack"]
        assert acks == [("ack", 2), ("ack", 4)]
        assert outboxes["alice"].seen() == [
            ("event", s + 1),
            ("event", s + 2),
            ("view", s + 2),
            ("event", s + 3),
        ]
        assert outboxes["bob"].seen() == [("event", s + 2), ("event", s + 3)]
        assert outboxes["carol"].seen() == [("event", s + 2), ("event", s + 4)]
        assert outboxes["t"].seen() == [("event", s + i) for i in range(1, 5)]
        await hub.close()
        await store.close()

    asyncio.run(run())
