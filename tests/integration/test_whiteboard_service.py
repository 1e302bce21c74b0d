"""The whiteboard service over a real server: staff clear and snapshot, removal and session end,
slow consumers, awareness limits and cleanup, compaction across restarts, drain."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

import pytest
from pycrdt import Array, Doc
from websockets.exceptions import ConnectionClosed

from clients import ClassroomClient, CommandFailed
from tests.integration.yboard import YClient, board_url, fresh_contents
from tests.server import LiveclassServer
from whiteboard import SqliteBoardStore
from whiteboard.protocol import AwarenessUpdate, PermissionDenied, SyncUpdate


async def staff(server: LiveclassServer) -> ClassroomClient:
    client = ClassroomClient(server.ws_url, server.token("t", "teacher"), "class")
    await client.connect()
    return client


async def on_board(server: LiveclassServer, identity: str, role: str = "student") -> YClient:
    client = await YClient.open(board_url(server, server.token(identity, role)))
    await client.sync()
    return client


def download(server: LiveclassServer, path: str) -> tuple[int, bytes]:
    status, body, _ = server.get(path)
    return status, body


async def test_clear_deletes_every_record_for_everyone_and_survives_a_restart(
    make_server: Callable[..., LiveclassServer],
) -> None:
    server = make_server()
    teacher = await staff(server)
    alice, bob = await on_board(server, "alice"), await on_board(server, "bob")
    try:
        for i in range(5):
            await alice.draw(f"a{i}", type="stroke")
        await bob.wait_until(lambda: len(bob.contents()) == 5, "alice's strokes")
        await teacher.clear_board()
        await alice.wait_until(lambda: alice.contents() == [], "the clear at alice")
        await bob.wait_until(lambda: bob.contents() == [], "the clear at bob")
        await bob.draw("after-clear", type="rect")
        await alice.wait_until(lambda: len(alice.contents()) == 1, "bob's record after the clear")
    finally:
        await teacher.close()
        await alice.close()
        await bob.close()
    server.stop()
    server.start()
    seen = await fresh_contents(server, server.token("carol"))
    assert [r["key"] for r in seen] == ["after-clear"]  # the clear is not carried out twice


async def test_a_snapshot_is_downloadable_by_staff_only(server: LiveclassServer) -> None:
    teacher = await staff(server)
    alice = await on_board(server, "alice")
    student = ClassroomClient(server.ws_url, server.token("alice"), "class")
    await student.connect()
    try:
        await alice.draw("kept", type="text", text="E = mc^2")
        await alice.draw("also-kept", type="line")
        await asyncio.sleep(0.1)
        snapshot_id = (await teacher.snapshot_board())["ids"][0]
        await alice.draw("later", type="rect")

        async def link(snapshot: int) -> str:
            ack = await teacher.request("board.snapshot_link", board="main", snapshot_id=snapshot)
            return str(ack["url"])

        deadline = time.monotonic() + 5
        status, body = download(server, await link(snapshot_id))
        while status == 404 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            status, body = download(server, await link(snapshot_id))
        assert status == 200
        doc = Doc()
        doc.apply_update(body)
        assert [r["key"] for r in doc.get("records", type=Array).to_py() or []] == [
            "kept",
            "also-kept",
        ]
        with pytest.raises(CommandFailed, match="not_allowed"):
            await student.request("board.snapshot_link", board="main", snapshot_id=snapshot_id)
        path = f"/whiteboard/class/main/snapshots/{snapshot_id}"
        assert download(server, f"{path}?token={server.token('t', 'teacher')}")[0] == 403
        assert download(server, f"{path}?token=nope")[0] == 403
        assert download(server, await link(999))[0] == 404
    finally:
        await teacher.close()
        await alice.close()
        await student.close()


async def test_removal_and_session_end_close_board_connections(server: LiveclassServer) -> None:
    teacher = await staff(server)
    student = ClassroomClient(server.ws_url, server.token("mallory"), "class", reconnect=False)
    await student.connect()
    mallory, alice = await on_board(server, "mallory"), await on_board(server, "alice")
    try:
        await teacher.remove("mallory", "spam")
        assert await mallory.wait_closed() == 4403
        again = await YClient.open(board_url(server, server.token("mallory")))
        assert await again.wait_closed() == 4403
        assert alice.close_code is None
        await teacher.end_session("done")
        assert await alice.wait_closed() == 4409
        late = await YClient.open(board_url(server, server.token("bob")))
        assert await late.wait_closed() == 4409
    finally:
        await teacher.close()
        await student.close()


async def test_updates_go_to_everyone_else_not_back_to_the_sender(server: LiveclassServer) -> None:
    alice, bob, carol = [await on_board(server, n) for n in ("alice", "bob", "carol")]
    try:
        for i in range(10):
            await alice.draw(f"a{i}", type="stroke")
        for other in (bob, carol):
            await other.wait_until(lambda o=other: o.count(SyncUpdate) == 10, "10 updates")
        await asyncio.sleep(0.2)
        assert alice.count(SyncUpdate) == 0
    finally:
        for c in (alice, bob, carol):
            await c.close()


async def test_a_closed_connections_cursor_is_removed_within_a_second(
    server: LiveclassServer,
) -> None:
    alice, bob = await on_board(server, "alice"), await on_board(server, "bob")
    try:
        await alice.send_awareness(4242, 3, '{"user":{"name":"Alice"},"cursor":{"x":1,"y":2}}')
        await bob.wait_until(lambda: bob.count(AwarenessUpdate) >= 1, "alice's cursor")
        alice.ws.transport.abort()  # no close frame: as a crashed tab or a dropped network
        started = time.monotonic()
        await bob.wait_until(
            lambda: any(
                e.client_id == 4242 and e.removed and e.clock == 4
                for m in bob.received
                if isinstance(m, AwarenessUpdate)
                for e in m.entries
            ),
            "the removal of alice's cursor",
            timeout=1.0,
        )
        assert time.monotonic() - started < 1.0
        late = await on_board(server, "carol")
        await asyncio.sleep(0.1)
        assert late.count(AwarenessUpdate) == 0  # no ghost for late joiners either
        await late.close()
    finally:
        await bob.close()


async def test_awareness_is_rate_limited_and_the_newest_state_wins(
    make_server: Callable[..., LiveclassServer],
) -> None:
    server = make_server("--board-awareness-per-s", "10")
    alice, bob = await on_board(server, "alice"), await on_board(server, "bob")
    try:
        started = time.monotonic()
        for clock in range(1, 201):
            await alice.send_awareness(77, clock, f'{{"cursor":{{"x":{clock},"y":0}}}}')
        await bob.wait_until(
            lambda: any(
                e.clock == 200
                for m in bob.received
                if isinstance(m, AwarenessUpdate)
                for e in m.entries
            ),
            "the newest cursor",
        )
        elapsed = time.monotonic() - started
        relayed = [e for m in bob.received if isinstance(m, AwarenessUpdate) for e in m.entries]
        # burst of 2 x rate, then rate per second, plus the held-back newest one
        assert len(relayed) <= 20 + 10 * elapsed + 2
        assert relayed[-1].clock == 200
    finally:
        await alice.close()
        await bob.close()


async def test_a_client_that_stops_reading_is_closed_and_the_board_goes_on(
    make_server: Callable[..., LiveclassServer],
) -> None:
    # The frame bound is what this test trips; the byte bound (test_whiteboard_limits.py) is set
    # past the 9.6 MB drawn here, so a reader slowed by a loaded machine is not dropped for it.
    server = make_server("--board-send-queue-frames", "64", "--board-send-queue-bytes", "67108864")
    writer, reader = await on_board(server, "alice"), await on_board(server, "bob")
    stuck = await YClient.open(board_url(server, server.token("stuck")), read=False, max_queue=1)
    try:
        text = "x" * 16_000
        for i in range(600):
            await writer.draw(f"big{i}", type="text", text=text)
        await reader.wait_until(lambda: len(reader.contents()) == 600, "every record", 15)
        assert writer.close_code is None and reader.close_code is None

        # The stuck client now reads what reached it: the server has dropped it (1013 when the
        # close frame got through, else an abort after the close timeout).
        async def read_to_the_end() -> None:
            with contextlib.suppress(ConnectionClosed):
                async for _ in stuck.ws:
                    pass

        await asyncio.wait_for(read_to_the_end(), 15)
        close = stuck.ws.protocol.close_rcvd
        assert close is None or close.code == 1013
        status, body = download(server, "/metrics")
        assert status == 200
        assert b"liveclass_slow_consumers_total 1.0" in body
    finally:
        await writer.close()
        await reader.close()
        stuck.ws.transport.abort()


async def test_compaction_keeps_every_update_across_restarts(
    make_server: Callable[..., LiveclassServer],
) -> None:
    server = make_server("--board-compact-updates", "20")
    alice, bob = await on_board(server, "alice"), await on_board(server, "bob")
    try:
        for i in range(75):
            await (alice if i % 2 else bob).draw(f"r{i}", type="stroke", points=[[i, i]])
        await alice.wait_until(lambda: len(alice.contents()) == 75, "every record")
    finally:
        await alice.close()
        await bob.close()
    server.stop()
    store = SqliteBoardStore(server.data_dir / "whiteboards.sqlite3")
    stored = await store.load("class", "main")
    await store.close()
    assert len(stored.updates) < 75 // 2  # compacted while running and on shutdown
    server.start()
    seen = await fresh_contents(server, server.token("carol"))
    assert sorted(r["key"] for r in seen) == sorted(f"r{i}" for i in range(75))


async def test_sigterm_tells_board_clients_to_reconnect(server: LiveclassServer) -> None:
    alice = await on_board(server, "alice")
    await alice.draw("before-restart", type="rect")
    await asyncio.sleep(0.1)
    assert server.terminate() == 0
    assert await alice.wait_closed() == 1012
    server.start()
    assert [r["key"] for r in await fresh_contents(server, server.token("bob"))] == [
        "before-restart"
    ]


async def test_a_full_board_refuses_writes_with_permission_denied(
    make_server: Callable[..., LiveclassServer],
) -> None:
    server = make_server("--board-max-bytes", "20000")
    alice, bob = await on_board(server, "alice"), await on_board(server, "bob")
    try:
        text = "y" * 1000
        for i in range(30):
            await alice.draw(f"r{i}", type="text", text=text)
        await alice.wait_until(lambda: alice.count(PermissionDenied) > 0, "board is full")
        denied = next(m for m in alice.received if isinstance(m, PermissionDenied))
        assert "full" in denied.reason
        await asyncio.sleep(0.2)
        kept = len(bob.contents())
        assert 10 <= kept < 30
        seen = await fresh_contents(server, server.token("carol"))
        assert [r["key"] for r in seen] == [f"r{i}" for i in range(kept)]
        assert alice.close_code is None
    finally:
        await alice.close()
        await bob.close()
