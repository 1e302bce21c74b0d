"""Session rules a client written from docs/protocol.md relies on, against a real ``liveclass
serve``: ``leave`` is always acknowledged; without an SFU the ``media.*`` room commands are
acknowledged and only media signalling gets ``media_unavailable``; TURN credentials go only to
participants who may send or receive media on a server that has media."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import msgpack
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from rooms import Role
from signaling import Grants, mint
from tests.server import LiveclassServer

WAIT_S = 10.0
TURN = ("--turn-servers", "eu=turn:127.0.0.1:3478", "--turn-secret", "t" * 32)


def pack(msg: dict[str, Any]) -> bytes:
    return msgpack.packb(msg, use_bin_type=True)


async def join(server: LiveclassServer, token: str) -> tuple[ClientConnection, dict[str, Any]]:
    """A raw connection that joined ``class``, and its ``welcome``."""
    ws = await connect(server.ws_url, compression=None, max_size=None, ping_interval=None)
    await ws.send(pack({"t": "join", "token": token, "room": "class"}))
    return ws, await next_frame(ws, "welcome")


async def next_frame(ws: ClientConnection, *types: str) -> dict[str, Any]:
    async with asyncio.timeout(WAIT_S):
        while True:
            msg: dict[str, Any] = msgpack.unpackb(await ws.recv())
            if msg["t"] in types:
                return msg


async def answer(ws: ClientConnection, frame: dict[str, Any]) -> dict[str, Any]:
    """Send ``frame`` and return its ``ack`` or ``error``."""
    await ws.send(pack(frame))
    async with asyncio.timeout(WAIT_S):
        while True:
            msg: dict[str, Any] = msgpack.unpackb(await ws.recv())
            if msg["t"] in ("ack", "error") and msg.get("ref") == frame["ref"]:
                return msg


async def frames_until_closed(ws: ClientConnection) -> list[dict[str, Any]]:
    frames: list[dict[str, Any]] = []
    with contextlib.suppress(ConnectionClosed):
        async with asyncio.timeout(WAIT_S):
            while True:
                frames.append(msgpack.unpackb(await ws.recv()))
    return frames


def token(server: LiveclassServer, identity: str, role: str, publish: bool, subscribe: bool) -> str:
    grants = Grants("class", Role(role), can_publish=publish, can_subscribe=subscribe)
    return mint(server.keyring, identity=identity, name=identity, grants=grants, ttl_s=600)


# leave


async def test_leave_with_a_raised_hand_is_acknowledged_after_its_event_then_closed_1000(
    server: LiveclassServer,
) -> None:
    ws, _ = await join(server, server.token("s1"))
    assert (await answer(ws, {"t": "hand.raise", "ref": 1}))["t"] == "ack"
    await ws.send(pack({"t": "leave", "ref": 2}))
    frames = frames_until_closed(ws)
    kinds = [
        (f["t"], f.get("type") or f.get("ref"))
        for f in await frames
        if f["t"] in ("event", "ack", "error")
    ]
    assert ("event", "hand.lowered") in kinds and ("ack", 2) in kinds, kinds
    assert kinds.index(("event", "hand.lowered")) < kinds.index(("ack", 2))
    assert ws.close_code == 1000


async def test_leave_without_a_raised_hand_is_acknowledged_then_closed_1000(
    server: LiveclassServer,
) -> None:
    ws, _ = await join(server, server.token("s1"))
    await ws.send(pack({"t": "leave", "ref": 7}))
    frames = await frames_until_closed(ws)
    acks = [f for f in frames if f["t"] == "ack"]
    assert len(acks) == 1 and acks[0]["ref"] == 7
    assert len(acks[0]["ids"]) == 1, "participant.left is recorded (for the staff's attendance)"
    assert not [f for f in frames if f["t"] == "event"], "a student is not sent it"
    assert ws.close_code == 1000


# --no-media


async def test_without_media_the_media_rules_are_room_commands_and_signalling_is_unavailable(
    make_server: Callable[..., LiveclassServer],
) -> None:
    server = make_server("--no-media")
    teacher, _ = await join(server, server.token("t1", "teacher"))
    student, _ = await join(server, server.token("s1"))
    try:
        rules = [
            {"t": "media.mode", "mode": "lecture"},
            {"t": "media.mute", "source": "camera", "muted": True, "identity": "s1"},
            {"t": "media.permit", "identity": "s1", "allowed": True},
            {"t": "media.spotlight", "identity": "s1"},
        ]
        for ref, rule in enumerate(rules, 1):
            reply = await answer(teacher, {**rule, "ref": ref})
            assert reply["t"] == "ack" and len(reply["ids"]) == 1, (rule, reply)
        signalling = [
            {"t": "media.publish", "sdp": "v=0\r\n", "sources": {"0": "camera"}},
            {"t": "media.subscribe"},
            {"t": "media.answer", "version": 1, "sdp": "v=0\r\n"},
            {"t": "media.candidate", "transport": "publish", "candidate": "", "sdp_mid": "0"},
        ]
        for ref, frame in enumerate(signalling, 10):
            reply = await answer(student, {**frame, "ref": ref})
            assert (reply["t"], reply.get("code")) == ("error", "media_unavailable"), frame
    finally:
        await asyncio.gather(teacher.close(), student.close())


# TURN credentials


async def test_without_media_nobody_gets_turn_credentials(
    make_server: Callable[..., LiveclassServer],
) -> None:
    server = make_server("--no-media", *TURN)
    ws, welcome = await join(server, server.token("t1", "teacher"))
    await ws.close()
    assert welcome["ice_servers"] == []


async def test_turn_credentials_go_only_to_participants_with_a_media_grant(
    make_server: Callable[..., LiveclassServer],
) -> None:
    server = make_server(*TURN, "--sfu-listen-ips", "127.0.0.1")
    grants = {"both": (True, True), "publish": (True, False), "subscribe": (False, True)}
    for identity, (publish, subscribe) in grants.items():
        ws, welcome = await join(server, token(server, identity, "student", publish, subscribe))
        await ws.close()
        [entry] = welcome["ice_servers"]
        assert entry["username"].endswith(f":{identity}"), entry
    no_grant = token(server, "none", "student", False, False)
    ws, welcome = await join(server, no_grant)
    await ws.close()
    assert welcome["ice_servers"] == []
    # A resume carries the same rule.
    ws = await connect(server.ws_url, compression=None, max_size=None, ping_interval=None)
    await ws.send(
        pack({"t": "join", "token": no_grant, "room": "class", "last_id": welcome["last_id"]})
    )
    resumed = await next_frame(ws, "resumed")
    await ws.close()
    assert resumed["ice_servers"] == []
