"""Bounded room state against a real ``liveclass serve`` (docs/protocol.md, "Bounds"): one identity
over many connections shares one command budget, holds a bounded number of connections (the newest
wins), and cannot grow the room past the bounds, so a ``welcome`` stays under 256 KiB."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import msgpack
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.server import LiveclassServer

WAIT_S = 10.0
WELCOME_MAX = 256 * 1024


def pack(msg: dict[str, Any]) -> bytes:
    return msgpack.packb(msg, use_bin_type=True)


async def joined(server: LiveclassServer, identity: str, role: str = "student") -> ClientConnection:
    """A raw connection that joined ``class`` (its welcome read)."""
    ws = await connect(server.ws_url, compression=None, max_size=None, ping_interval=None)
    await ws.send(pack({"t": "join", "token": server.token(identity, role), "room": "class"}))
    await reply(ws, "welcome")
    return ws


async def reply(ws: ClientConnection, *types: str) -> dict[str, Any]:
    async with asyncio.timeout(WAIT_S):
        while True:
            msg: dict[str, Any] = msgpack.unpackb(await ws.recv())
            if msg["t"] in types:
                return msg


async def welcome_bytes(server: LiveclassServer, identity: str, role: str) -> int:
    """The encoded size of the ``welcome`` frame a fresh connection of ``identity`` receives."""
    async with connect(server.ws_url, compression=None, max_size=None) as ws:
        await ws.send(pack({"t": "join", "token": server.token(identity, role), "room": "class"}))
        async with asyncio.timeout(WAIT_S):
            while True:
                frame = await ws.recv()
                assert isinstance(frame, bytes)
                if msgpack.unpackb(frame)["t"] == "welcome":
                    return len(frame)


async def flood(ws: ClientConnection, frames: list[dict[str, Any]]) -> dict[str, int]:
    """Send every frame at once, then read until each got its ``ack`` or ``error`` (or the server
    closed the connection); returns the count of each answer code (``ack`` for acks)."""
    answers: dict[str, int] = {}
    with contextlib.suppress(ConnectionClosed):
        for frame in frames:
            await ws.send(pack(frame))
        waiting = {frame["ref"] for frame in frames}
        async with asyncio.timeout(WAIT_S):
            while waiting:
                msg = msgpack.unpackb(await ws.recv())
                if msg["t"] in ("ack", "error") and msg.get("ref") in waiting:
                    waiting.discard(msg["ref"])
                    code = "ack" if msg["t"] == "ack" else msg["code"]
                    answers[code] = answers.get(code, 0) + 1
    return answers


async def closed_with(ws: ClientConnection) -> int | None:
    with contextlib.suppress(ConnectionClosed):
        async with asyncio.timeout(WAIT_S):
            while True:
                await ws.recv()
    return ws.close_code


#: No per-identity budget or connection cap: the room's bounds alone keep the welcome small.
UNLIMITED = (
    *("--identity-rate-per-s", "1e6", "--identity-burst", "1e6"),
    *("--max-connections-per-identity", "16"),
)


@pytest.mark.parametrize("args", [(), UNLIMITED], ids=["defaults", "room-bounds-alone"])
async def test_a_flood_by_one_identity_over_16_connections_keeps_the_welcome_under_256_kib(
    make_server: Callable[..., LiveclassServer], args: tuple[str, ...]
) -> None:
    server = make_server(*args)
    students = [await joined(server, "s1") for _ in range(16)]
    teachers = [await joined(server, "t1", "teacher") for _ in range(16)]
    try:
        question = {"t": "question.ask", "text": "q" * 500}
        chat = {"t": "chat.send", "text": "c" * 2000}
        poll = {
            "t": "poll.open",
            "question": "p" * 300,
            "options": ["o" * 100] * 10,
            "multiple": False,
        }
        student_frames = [[{**(question, chat)[n % 2], "ref": n} for n in range(40)]] * 16
        teacher_frames = [[{**poll, "ref": n} for n in range(40)]] * 16
        answers = await asyncio.gather(
            *(flood(ws, frames) for ws, frames in zip(students, student_frames, strict=True)),
            *(flood(ws, frames) for ws, frames in zip(teachers, teacher_frames, strict=True)),
        )
        total: dict[str, int] = {}
        for counts in answers:
            for code, n in counts.items():
                total[code] = total.get(code, 0) + n
        for role, identity in (("assistant", "a1"), ("student", "s2")):
            size = await welcome_bytes(server, identity, role)
            assert size < WELCOME_MAX, f"{identity}'s welcome is {size} bytes ({total})"
        assert total.get("limit_reached", 0) > 0, total
        assert total.get("rate_limited", 0) > 0 or args == UNLIMITED, total
    finally:
        await asyncio.gather(*(ws.close() for ws in students + teachers))


async def test_past_the_cap_the_oldest_connection_of_an_identity_is_closed(
    make_server: Callable[..., LiveclassServer],
) -> None:
    server = make_server("--max-connections-per-identity", "2")
    first, second = await joined(server, "s1"), await joined(server, "s1")
    other = await joined(server, "s2")
    third = await joined(server, "s1")
    try:
        error = await reply(first, "error")
        assert error["code"] == "connection_replaced"
        assert await closed_with(first) == 4410
        for n, ws in enumerate((second, third, other)):
            await ws.send(pack({"t": "chat.send", "text": "still here", "ref": n}))
            assert (await reply(ws, "ack", "error"))["t"] == "ack"
    finally:
        await asyncio.gather(*(ws.close() for ws in (first, second, third, other)))


async def test_an_identitys_connections_share_one_command_budget(
    make_server: Callable[..., LiveclassServer],
) -> None:
    server = make_server("--identity-rate-per-s", "0.5", "--identity-burst", "4")
    mine = [await joined(server, "s1") for _ in range(3)]
    other = await joined(server, "s2")
    try:
        frames = [{"t": "hand.lower", "ref": n} for n in range(4)]
        answers = await asyncio.gather(*(flood(ws, frames) for ws in mine))
        assert sum(a.get("ack", 0) for a in answers) == 4, answers
        assert sum(a.get("rate_limited", 0) for a in answers) == 8, answers
        assert await flood(other, frames) == {"ack": 4}
    finally:
        await asyncio.gather(*(ws.close() for ws in (*mine, other)))
