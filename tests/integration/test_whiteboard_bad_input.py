"""Bad input on /whiteboard over a real server: each is refused with its close code (4400-4499:
do not retry) or the permission-denied message, the board is unchanged, and everyone else keeps
drawing."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pycrdt import Array, Doc

from clients import ClassroomClient
from tests.integration.yboard import YClient, board_url, fresh_contents
from tests.metrics_scrape import scrape, value
from tests.server import LiveclassServer
from whiteboard.protocol import (
    AwarenessEntry,
    AwarenessUpdate,
    PermissionDenied,
    SyncUpdate,
    encode_awareness,
    encode_sync_step1,
    encode_update,
)

MAX_MESSAGE = 64 * 1024


@pytest.fixture(scope="module")
def wb_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveclassServer]:
    data = tmp_path_factory.mktemp("wb-bad-input")
    server = LiveclassServer(Path(data), ("--board-max-message-bytes", str(MAX_MESSAGE)))
    server.start()
    yield server
    server.stop()


def valid_update() -> bytes:
    doc = Doc()
    captured: list[bytes] = []
    doc.observe(lambda event: captured.append(event.update))
    doc.get("records", type=Array).append({"key": "evil", "val": {"type": "rect"}})
    return captured[0]


@dataclass(frozen=True)
class Case:
    name: str
    send: Callable[[YClient], Awaitable[None]]
    close_code: int


def sending(data: bytes | str) -> Callable[[YClient], Awaitable[None]]:
    async def send(client: YClient) -> None:
        await client.ws.send(data)

    return send


def unappliable() -> bytes:
    """A valid update with its content bytes damaged: framed correctly, rejected by pycrdt."""
    update = bytearray(valid_update())
    update[1:6] = b"\xff\xff\xff\xff\x0f"
    return encode_update(bytes(update))


CASES = [
    Case("varuint over 53 bits", sending(b"\x00\x02" + b"\xff" * 9 + b"\x01"), 4400),
    Case("truncated update", sending(encode_update(valid_update())[:-5]), 4400),
    Case("length past the end", sending(b"\x00\x02\x7f\x00\x00"), 4400),
    Case("unknown message type", sending(b"\x09"), 4400),
    Case("unknown sync subtype", sending(b"\x00\x05\x00"), 4400),
    Case("trailing bytes", sending(encode_update(valid_update()) + b"\x00"), 4400),
    Case("update pycrdt cannot apply", sending(encode_update(b"\x01\x02\x03")), 4400),
    Case("damaged update", sending(unappliable()), 4400),
    Case("state vector pycrdt cannot read", sending(encode_sync_step1(b"\x05\x01")), 4400),
    Case("text frame", sending("hello"), 4400),
    Case("auth message from a client", sending(b"\x02\x00\x01x"), 4400),
    Case(
        "awareness state that is not JSON",
        sending(encode_awareness([AwarenessEntry(7, 1, "{nope")])),
        4400,
    ),
    Case("oversized message", sending(encode_update(b"\x00" * (MAX_MESSAGE + 10))), 4413),
]


def cursors(messages: list[object]) -> list[int]:
    """The awareness client ids in ``messages``, in order."""
    return [e.client_id for m in messages if isinstance(m, AwarenessUpdate) for e in m.entries]


async def board_with_bystanders(server: LiveclassServer, board: str) -> tuple[YClient, YClient]:
    """A teacher and a student on the main board of room ``board`` (a room per test: students
    open only the boards of their room), one record drawn and seen by both."""
    teacher = await YClient.open(
        board_url(server, server.token("t", "teacher", room=board), room=board)
    )
    student = await YClient.open(board_url(server, server.token("s1", room=board), room=board))
    await teacher.sync()
    await student.sync()
    await teacher.draw("before", type="rect")
    await student.wait_until(lambda: len(student.contents()) == 1, "the first record")
    return teacher, student


async def still_drawing(
    server: LiveclassServer, board: str, teacher: YClient, student: YClient
) -> None:
    """The board holds only what bystanders drew, and they keep drawing."""
    await teacher.draw("after", type="ellipse")
    await student.wait_until(lambda: len(student.contents()) == 2, "the bystander's next record")
    seen = await fresh_contents(server, server.token("late", "student", room=board), room=board)
    assert [r["key"] for r in seen] == ["before", "after"]
    assert teacher.close_code is None and student.close_code is None


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
async def test_bad_message_closes_only_its_sender_and_changes_nothing(
    wb_server: LiveclassServer, case: Case
) -> None:
    board = "bad-" + "".join(ch if ch.isalnum() else "-" for ch in case.name)
    teacher, student = await board_with_bystanders(wb_server, board)
    attacker = await YClient.open(
        board_url(wb_server, wb_server.token("mallory", room=board), room=board)
    )
    try:
        await attacker.sync()
        await case.send(attacker)
        assert await attacker.wait_closed() == case.close_code
        assert attacker.close_reason  # says what was wrong
        await still_drawing(wb_server, board, teacher, student)
        closes = value(
            scrape(wb_server.http_url), "liveclass_board_closes_total", code=str(case.close_code)
        )
        assert closes >= 1
    finally:
        for c in (attacker, teacher, student):
            await c.close()


@pytest.mark.parametrize(
    ("what", "url", "close_code"),
    [
        ("a token for another room", lambda s: board_url(s, s.token("s1", room="other")), 4403),
        ("a token that is not a JWT", lambda s: board_url(s, "not-a-token"), 4401),
        ("no token", lambda s: f"ws://127.0.0.1:{s.port}/whiteboard/class/main", 4401),
        ("a board name with a space", lambda s: board_url(s, s.token("s1"), board="a%20b"), 4400),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
async def test_connections_the_token_does_not_admit_are_closed(
    wb_server: LiveclassServer, what: str, url: Callable[[LiveclassServer], str], close_code: int
) -> None:
    client = await YClient.open(url(wb_server))
    assert await client.wait_closed() == close_code, what
    assert client.count(SyncUpdate) == 0


async def test_a_locked_board_refuses_students_writes_with_permission_denied(
    wb_server: LiveclassServer,
) -> None:
    board = "locked"
    teacher, student = await board_with_bystanders(wb_server, board)
    staff = ClassroomClient(wb_server.ws_url, wb_server.token("t", "teacher", room=board), board)
    await staff.connect()
    try:
        await staff.lock_board("main")
        await student.draw("refused", type="stroke")
        await student.wait_until(lambda: student.count(PermissionDenied) == 1, "permission denied")
        denied = next(m for m in student.received if isinstance(m, PermissionDenied))
        assert "locked" in denied.reason
        await teacher.draw("staff-may", type="text")
        await student.wait_until(lambda: len(student.contents()) == 3, "the teacher's record")
        seen = await fresh_contents(wb_server, wb_server.token("late", room=board), room=board)
        assert [r["key"] for r in seen] == ["before", "staff-may"]
        assert teacher.close_code is None and student.close_code is None
        assert [r["key"] for r in teacher.contents()] == ["before", "staff-may"]

        await staff.lock_board("main", locked=False)
        fresh = await YClient.open(
            board_url(wb_server, wb_server.token("s2", room=board), room=board)
        )
        await fresh.sync()
        await fresh.draw("allowed-again", type="line")
        await teacher.wait_until(lambda: len(teacher.contents()) == 3, "the student's record")
        await fresh.close()
    finally:
        await staff.close()
        await teacher.close()
        await student.close()


async def test_awareness_for_another_connections_client_is_ignored(
    wb_server: LiveclassServer,
) -> None:
    board = "awareness-owner"
    teacher, student = await board_with_bystanders(wb_server, board)
    try:
        await teacher.send_awareness(1001, 1, '{"user":{"name":"T"}}')
        await student.wait_until(lambda: 1001 in cursors(student.received), "the teacher's cursor")
        before, student_before = len(teacher.received), len(student.received)
        await student.send_awareness(1001, 5, "null")  # tries to remove the teacher's cursor
        await student.send_awareness(2002, 1, '{"user":{"name":"S"}}')
        await teacher.wait_until(
            lambda: 2002 in cursors(teacher.received[before:]), "the student's own cursor"
        )
        assert 1001 not in cursors(teacher.received[before:])
        assert 1001 not in cursors(student.received[student_before:])
    finally:
        await teacher.close()
        await student.close()


async def test_a_read_only_client_resyncing_a_locked_board_is_not_refused(
    wb_server: LiveclassServer,
) -> None:
    """Its step 2 holds the board's deletions (Yjs always sends its delete set) and nothing new."""
    board = "locked-resync"
    teacher, student = await board_with_bystanders(wb_server, board)
    staff = ClassroomClient(wb_server.ws_url, wb_server.token("t", "teacher", room=board), board)
    await staff.connect()
    try:
        await teacher.draw("gone", type="rect")
        captured: list[bytes] = []
        subscription = teacher.doc.observe(lambda event: captured.append(event.update))
        teacher.records.pop()
        teacher.doc.unobserve(subscription)
        await teacher.ws.send(encode_update(captured[0]))
        await student.wait_until(lambda: len(student.contents()) == 1, "the deletion")
        await staff.lock_board("main")
        again = await YClient.open(
            board_url(wb_server, wb_server.token("s1", room=board), room=board)
        )
        again.doc.apply_update(student.doc.get_update())  # the same student, back with its copy
        await again.sync()
        await asyncio.sleep(0.2)
        assert again.count(PermissionDenied) == 0
        await again.draw("new", type="line")
        await again.wait_until(lambda: again.count(PermissionDenied) == 1, "permission denied")
        await again.close()
    finally:
        await staff.close()
        await teacher.close()
        await student.close()
