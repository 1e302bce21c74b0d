"""The whiteboard service's room rules without sockets: a fake room feed (the hub's part the
service uses) and fake senders around the real service and a SQLite board store."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from rooms import (
    BreakoutMove,
    BreakoutOpen,
    Participant,
    Record,
    Role,
    RoomLock,
    admit,
    decide,
    evolve,
    new_room,
)
from whiteboard import AccessDenied, SqliteBoardStore, WhiteboardService, WhiteboardSettings

TEACHER = Participant("t", "Tess", Role.TEACHER)
ADA = Participant("ada", "Ada", Role.STUDENT)


class FakeRoom:
    """A room's state with its listeners, and the presence the service reports."""

    def __init__(self) -> None:
        self.state = new_room("class")
        self.listeners: list[Callable[[Record], None]] = []
        self.online: dict[str, int] = {}

    def watch(self, listener: Callable[[Record], None]) -> None:
        self.listeners.append(listener)

    def unwatch(self, listener: Callable[[Record], None]) -> None:
        self.listeners.remove(listener)

    def fold(self, events: list[object]) -> None:
        for event in events:
            record = Record(self.state.last_id + 1, 0, event)  # type: ignore[arg-type]
            evolve(self.state, record)
            for listener in list(self.listeners):
                listener(record)

    async def admit(self, participant: Participant) -> None:
        self.fold(list(admit(self.state, participant)))

    def attach(self, participant: Participant) -> None:
        self.online[participant.identity] = self.online.get(participant.identity, 0) + 1

    def detach(self, participant: Participant) -> None:
        self.online[participant.identity] -= 1
        if not self.online[participant.identity]:
            del self.online[participant.identity]


class FakeSender:
    def __init__(self) -> None:
        self.closed = False
        self.close_code: int | None = None

    def put(self, frame: bytes, wire: bytes | None = None) -> bool:
        return not self.closed

    def put_many(self, frames: list[bytes], wire: bytes) -> bool:
        return not self.closed

    async def close(
        self, code: int, reason: str, *, final_frame: bytes | None, timeout: float = 2.0
    ) -> None:
        self.closed, self.close_code = True, code


class NoLimit:
    def take(self) -> int:
        return 0


@pytest.fixture
def room() -> FakeRoom:
    return FakeRoom()


@pytest.fixture
async def service(tmp_path: Path, room: FakeRoom) -> AsyncIterator[WhiteboardService]:
    async def open_room(room_id: str) -> FakeRoom:
        return room

    store = SqliteBoardStore(tmp_path / "boards.sqlite3")
    service = WhiteboardService(
        store,
        WhiteboardSettings(max_staff_boards=2),
        open_room,
        lambda b: b,
        lambda r, b: NoLimit(),
    )
    yield service
    await service.close()
    await store.close()


async def connect(service: WhiteboardService, who: Participant, board: str) -> FakeSender:
    sender = FakeSender()
    await service.connect("class", board, who, sender, NoLimit())
    return sender


def command(room: FakeRoom, actor: Participant, cmd: object) -> None:
    room.fold(list(decide(room.state, actor, cmd)))  # type: ignore[arg-type]


async def test_a_board_connection_admits_its_identity_and_is_its_presence(
    service: WhiteboardService, room: FakeRoom
) -> None:
    await connect(service, ADA, "main")
    await connect(service, ADA, "main")
    assert "ada" in room.state.participants
    assert room.online == {"ada": 2}  # the hub counts the identity once
    for board in list(service._boards.values()):
        for peer in list(board.peers):
            service.disconnect(peer)
    assert room.online == {}


async def test_a_lock_closes_board_connections_of_identities_never_admitted(
    service: WhiteboardService, room: FakeRoom
) -> None:
    ada = await connect(service, ADA, "main")
    # A connection that raced the lock: on the board, but the room never admitted its identity.
    ghost = await connect(service, Participant("ghost", "G", Role.STUDENT), "main")
    del room.state.participants["ghost"]
    command(room, TEACHER, RoomLock(True))
    await asyncio.sleep(0)
    assert ghost.close_code == 4423 and ada.close_code is None
    with pytest.raises(AccessDenied) as refused:
        await connect(service, Participant("late", "L", Role.STUDENT), "main")
    assert refused.value.close_code == 4423


async def test_moves_close_a_students_board_that_is_no_longer_theirs(
    service: WhiteboardService, room: FakeRoom
) -> None:
    await room.admit(TEACHER)
    await room.admit(ADA)
    command(room, TEACHER, BreakoutOpen(("red", "blue")))
    command(room, TEACHER, BreakoutMove("ada", "red"))
    red, main = await connect(service, ADA, "br1-1"), await connect(service, ADA, "main")
    with pytest.raises(AccessDenied) as refused:
        await connect(service, ADA, "br1-2")
    assert refused.value.close_code == 4404
    command(room, TEACHER, BreakoutMove("ada", "blue"))
    await asyncio.sleep(0)
    assert red.close_code == 4404 and main.close_code is None


async def test_staff_open_at_most_max_staff_boards_besides_the_rooms_boards(
    service: WhiteboardService, room: FakeRoom
) -> None:
    await connect(service, TEACHER, "a")
    await connect(service, TEACHER, "b")
    await connect(service, TEACHER, "main")
    with pytest.raises(AccessDenied) as refused:
        await connect(service, TEACHER, "c")
    assert refused.value.close_code == 4404
    await connect(service, TEACHER, "a")  # open already: no new board
