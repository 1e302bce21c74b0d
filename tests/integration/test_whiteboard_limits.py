"""Whiteboard limits over a real server: what a connection that never reads may make the server
hold, awareness floods, board scope and board-only participants (issue 12, items 4-7)."""

from __future__ import annotations

import asyncio
import json
import re
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pycrdt import Map

from clients import ClassroomClient
from tests.integration.rawsocket import raw_websocket
from tests.integration.yboard import YClient, board_url, fresh_contents
from tests.integration.yjs import YjsClients, wait_for
from tests.server import LiveclassServer
from whiteboard.protocol import AwarenessEntry, PermissionDenied, encode_awareness, encode_update

MIB = 1024 * 1024


def metric(server: LiveclassServer, name: str) -> float:
    _, body, _ = server.get("/metrics")
    match = re.search(rf"^{name} ([0-9.e+]+)$", body.decode(), re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def rss_bytes(server: LiveclassServer) -> int:
    assert server.proc is not None
    with open(f"/proc/{server.proc.pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def never_reading_board_socket(server: LiveclassServer, token: str) -> socket.socket:
    """A board connection that never reads, with a 4 KiB receive buffer so the kernel absorbs
    little and the server's queue fills."""
    sock = raw_websocket(server, f"/whiteboard/class/main?token={token}", receive_buffer=4096)
    sock.settimeout(5)
    return sock


async def test_a_board_connection_that_never_reads_is_closed_before_its_queue_passes_the_bound(
    make_server: Callable[..., LiveclassServer],
) -> None:
    server = make_server("--board-send-queue-bytes", str(MIB))
    writer = await YClient.open(board_url(server, server.token("t", "teacher")))
    await writer.sync()
    stuck = never_reading_board_socket(server, server.token("stuck"))
    try:
        await writer.wait_until(
            lambda: metric(server, "liveclass_board_connections") == 2, "both connected"
        )
        before = rss_bytes(server)
        # 64 x 512 KiB: each overwrites one map entry, so the board itself stays small (the
        # old value is garbage-collected by Yjs) and what grows is what is queued for `stuck`.
        scratch = writer.doc.get("scratch", type=Map)
        captured: list[bytes] = []
        subscription = writer.doc.observe(lambda event: captured.append(event.update))
        for i in range(64):
            scratch["big"] = f"{i:04d}" + "x" * (512 * 1024)
            await writer.ws.send(encode_update(captured.pop()))
            await asyncio.sleep(0.01)
        writer.doc.unobserve(subscription)
        await writer.wait_until(
            lambda: metric(server, "liveclass_slow_consumers_total") == 1, "the slow consumer", 10
        )
        await writer.wait_until(
            lambda: metric(server, "liveclass_board_connections") == 1, "the close", 10
        )
        grown = rss_bytes(server) - before
        assert writer.close_code is None
        # 32 MiB went to the board; the server kept at most the 1 MiB queue, one message and
        # the transport's buffer for the reader that never read.
        assert grown < 16 * MIB, f"RSS grew {grown / MIB:.1f} MiB"
    finally:
        stuck.close()
        await writer.close()


@pytest.fixture
def yjs(tmp_path: Path) -> Iterator[YjsClients]:
    clients = YjsClients(tmp_path)
    yield clients
    clients.close()


def spoofed_cursor(i: int) -> str:
    return json.dumps(
        {"user": {"name": "Ms Rivera", "identity": "t", "color": "#000000"}, "cursor": {"x": i}}
    )


async def test_one_connection_shows_at_most_its_quota_of_cursors_and_only_as_itself(
    server: LiveclassServer, yjs: YjsClients
) -> None:
    flooder = await YClient.open(board_url(server, server.token("s-eve", name="Eve")))
    try:
        await flooder.sync()
        for first in range(0, 4000, 400):  # 4,000 client ids claiming to be the teacher
            entries = [
                AwarenessEntry(cid, 1, spoofed_cursor(cid)) for cid in range(first, first + 400)
            ]
            await flooder.ws.send(encode_awareness(entries))
        viewer = yjs.open(server, "viewer", client_id=777_777)
        await asyncio.sleep(0.5)  # the flood is taken (30 messages a second) and relayed
        wait_for(
            "the viewer to see the flooder's cursors",
            lambda: len(viewer.state()["awareness"]) > 1,
            5,
        )
        await asyncio.sleep(0.5)
        seen = {cid: state for cid, state in viewer.state()["awareness"].items() if cid != "777777"}
        assert len(seen) == 4, f"{len(seen)} cursors from one connection"
        for state in seen.values():
            assert state["user"] == {"name": "Eve", "identity": "s-eve", "color": "#000000"}
        assert flooder.close_code is None
    finally:
        await flooder.close()


async def test_an_awareness_message_with_too_many_entries_is_refused(
    server: LiveclassServer,
) -> None:
    flooder = await YClient.open(board_url(server, server.token("s-eve")))
    try:
        await flooder.sync()
        await flooder.ws.send(encode_awareness([AwarenessEntry(i, 1, "null") for i in range(6000)]))
        assert await flooder.wait_closed() == 4413
    finally:
        await flooder.close()


async def test_removals_flooded_by_one_connection_leave_nothing_behind(
    server: LiveclassServer,
) -> None:
    flooder = await YClient.open(board_url(server, server.token("s-eve")))
    await flooder.sync()
    before = rss_bytes(server)
    try:
        for message in range(150):  # 150,000 removals of client ids nobody owns
            first = 1000 * message
            nulls = [AwarenessEntry(cid, 1, "null") for cid in range(first, first + 1000)]
            await flooder.ws.send(encode_awareness(nulls))
        await flooder.sync()  # every message before this one was read
        await asyncio.sleep(3)  # and taken, past the rate limit
        assert flooder.close_code is None
    finally:
        await flooder.close()
    await asyncio.sleep(0.5)
    grown = rss_bytes(server) - before
    assert grown < 8 * MIB, f"RSS grew {grown / MIB:.1f} MiB"


async def board_of(
    server: LiveclassServer, identity: str, board: str, role: str = "student"
) -> YClient:
    client = await YClient.open(board_url(server, server.token(identity, role), board=board))
    return client


async def test_students_open_only_main_and_their_breakout_rooms_board(
    server: LiveclassServer,
) -> None:
    teacher = ClassroomClient(server.ws_url, server.token("t", "teacher"), "class")
    ada = ClassroomClient(server.ws_url, server.token("ada"), "class")
    await teacher.connect()
    await ada.connect()
    opened: list[YClient] = []
    try:
        # No board by a new name, and no breakout room's board while none is open (a breakout
        # room's board is br<round>-<i>, not its name).
        for name in ("scratch", "br1-1"):
            refused = await board_of(server, "ada", name)
            assert await refused.wait_closed() == 4404, name
        await teacher.open_breakouts(["red", "blue"])
        await teacher.move_to_breakout("ada", "red")
        await asyncio.sleep(0.2)
        blue = await board_of(server, "ada", "br1-2")
        assert await blue.wait_closed() == 4404  # another breakout room's board

        red = await board_of(server, "ada", "br1-1")
        main = await board_of(server, "ada", "main")
        opened += [red, main]
        await red.sync()
        await main.sync()
        await red.draw("r1", type="rect")
        await main.draw("m1", type="rect")  # main is read-only while ada is in a breakout room
        await main.wait_until(lambda: main.count(PermissionDenied) == 1, "permission denied")
        assert await fresh_contents(server, server.token("t", "teacher"), "br1-1") == [
            {"key": "r1", "val": {"type": "rect"}}
        ]
        assert await fresh_contents(server, server.token("t", "teacher"), "main") == []

        # Moved to blue: the red board's connection is closed (the client opens blue's); main
        # stays open, read-only.
        await teacher.move_to_breakout("ada", "blue")
        assert await red.wait_closed() == 4404
        assert main.close_code is None
        # Back in the main room: main is hers to draw on again (with a fresh document, as the
        # web app starts one after a refusal).
        await teacher.close_breakouts()
        again = await board_of(server, "ada", "main")
        opened.append(again)
        await again.sync()
        await again.draw("m2", type="rect")
        await asyncio.sleep(0.3)
        assert await fresh_contents(server, server.token("t", "teacher"), "main") == [
            {"key": "m2", "val": {"type": "rect"}}
        ]
    finally:
        for client in opened:
            await client.close()
        await ada.close()
        await teacher.close()


async def test_staff_open_a_bounded_number_of_other_boards(
    make_server: Callable[..., LiveclassServer],
) -> None:
    server = make_server("--board-staff-boards", "3")
    boards = []
    try:
        for i in range(3):
            board = await board_of(server, "t", f"notes{i}", "teacher")
            await board.sync()
            boards.append(board)
        fourth = await board_of(server, "t", "notes3", "teacher")
        assert await fourth.wait_closed() == 4404
        again = await board_of(server, "a", "notes1", "assistant")  # an open one: fine
        await again.sync()
        boards.append(again)
        main = await board_of(server, "a", "main", "assistant")  # main never counts
        await main.sync()
        boards.append(main)
    finally:
        for board in boards:
            await board.close()


async def test_a_whiteboard_only_participant_is_listed_removable_and_closed(
    server: LiveclassServer,
) -> None:
    teacher = ClassroomClient(server.ws_url, server.token("t", "teacher"), "class")
    await teacher.connect()
    eve = await board_of(server, "eve", "main")  # never joins /ws
    try:
        await eve.sync()
        await teacher.wait_until(lambda: "eve" in teacher.session.roster, 5)
        assert teacher.session.online == 2
        late = ClassroomClient(server.ws_url, server.token("late", "assistant"), "class")
        await late.connect()  # a welcome lists her too
        assert "eve" in late.session.roster and late.session.online == 3
        await late.close()

        # The same identity on /ws and on two boards connections is online once.
        eve_ws = ClassroomClient(server.ws_url, server.token("eve"), "class")
        await eve_ws.connect()
        eve2 = await board_of(server, "eve", "main")
        await eve2.sync()
        await asyncio.sleep(0.4)
        assert teacher.session.online == 2
        await eve_ws.close()
        await eve2.close()
        await asyncio.sleep(0.4)
        assert "eve" in teacher.session.roster and teacher.session.online == 2

        # Removable, and removal closes her board connection.
        await teacher.remove("eve")
        assert await eve.wait_closed() == 4403
        await teacher.wait_until(lambda: "eve" not in teacher.session.roster, 5)
        assert teacher.session.online == 1
    finally:
        await eve.close()
        await teacher.close()


async def test_a_room_lock_refuses_new_board_only_identities_and_session_end_closes_them(
    server: LiveclassServer,
) -> None:
    teacher = ClassroomClient(server.ws_url, server.token("t", "teacher"), "class")
    await teacher.connect()
    ada = await board_of(server, "ada", "main")
    try:
        await ada.sync()
        # Her board connection admitted her, as a join does: staff see her first join.
        joined = await teacher.wait_for(
            lambda e: e.type == "participant.joined" and e.data["identity"] == "ada", 5
        )
        assert joined.data["role"] == "student"
        await teacher.lock_room()
        # Ada was admitted when her board connection opened: the lock keeps her, as it keeps
        # those who joined /ws; an identity new to the room is refused.
        bob = await board_of(server, "bob", "main")
        assert await bob.wait_closed() == 4423
        await asyncio.sleep(0.2)
        assert ada.close_code is None
        await teacher.end_session("done")
        assert await ada.wait_closed() == 4409
    finally:
        await ada.close()
        await teacher.close()


async def test_one_identity_holds_at_most_the_cap_of_board_connections_the_newest_winning(
    make_server: Callable[..., LiveclassServer],
) -> None:
    server = make_server("--max-connections-per-identity", "3")
    token = server.token("s-many")
    boards = [await YClient.open(board_url(server, token)) for _ in range(3)]
    try:
        for board in boards:
            await board.sync()
        newest = await YClient.open(board_url(server, token))
        boards.append(newest)
        await newest.sync()
        assert await boards[0].wait_closed() == 4410
        await newest.draw("after", kind="dot")
        for board in boards[1:3]:
            await board.wait_until(
                lambda b=board: any(r["key"] == "after" for r in b.contents()),
                "the newest connection's drawing",
            )
            assert board.close_code is None
    finally:
        await asyncio.gather(*(b.close() for b in boards), return_exceptions=True)
