"""The edge's media session without sockets: what it tells the SFU worker when the room's rules
change while a call to the worker is under way. A recording worker stands in for the SFU; the
room's state is the real fold of real events."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from rooms import (
    BreakoutMove,
    BreakoutOpen,
    Participant,
    Record,
    Role,
    admit,
    decide,
    evolve,
    new_room,
)
from signaling.codec import MediaFrame
from signaling.media import MediaSession

TEACHER = Participant("t", "Tess", Role.TEACHER)
ADA = Participant("ada", "Ada", Role.STUDENT)


class Room:
    """The hub's part a media session uses: the room's id and state, and its folded records."""

    def __init__(self) -> None:
        self.state = new_room("class")
        self.room_id = "class"
        self.listeners: list[Callable[[Record], None]] = []
        for who in (TEACHER, ADA):
            self.fold(list(admit(self.state, who)))

    def watch(self, listener: Callable[[Record], None]) -> None:
        self.listeners.append(listener)

    def unwatch(self, listener: Callable[[Record], None]) -> None:
        self.listeners.remove(listener)

    def command(self, actor: Participant, cmd: Any) -> None:
        self.fold(list(decide(self.state, actor, cmd)))

    def fold(self, events: list[Any]) -> None:
        for event in events:
            record = Record(self.state.last_id + 1, 0, event)
            evolve(self.state, record)
            for listener in list(self.listeners):
                listener(record)


class SlowWorker:
    """Records the Router each call names; ``subscribe`` waits until ``release`` is set (a remote
    worker's round trip)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.called = asyncio.Event()
        self.release = asyncio.Event()

    async def subscribe(
        self, peer_id: str, router_id: str, identity: str, offer: Any, layers: Any = None
    ) -> None:
        self.calls.append(("subscribe", router_id))
        self.called.set()
        await self.release.wait()

    async def move(self, peer_id: str, router_id: str) -> None:
        self.calls.append(("move", router_id))

    async def close_peer(self, peer_id: str) -> None:
        self.calls.append(("close_peer", ""))


async def test_a_move_during_the_first_subscribe_reaches_the_worker() -> None:
    room, worker = Room(), SlowWorker()
    room.command(TEACHER, BreakoutOpen(("red",)))
    session = MediaSession(worker, room, ADA, lambda frame: None)
    subscribing = asyncio.ensure_future(session.handle(MediaFrame("media.subscribe", 1)))
    await worker.called.wait()
    # Moved while the worker is still answering the subscribe for the main room.
    room.command(TEACHER, BreakoutMove("ada", "red"))
    worker.release.set()
    await subscribing
    for _ in range(10):
        await asyncio.sleep(0)
    assert worker.calls == [("subscribe", "class"), ("move", "class/red")]
    await session.close()
