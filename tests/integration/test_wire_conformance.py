"""What docs/protocol.md promises a client writer about the shape of frames, against a real
``liveclass serve``: optional fields absent or nil alike, every documented field sent (nil when
unset), ``join`` answered without a ``ref``, and what ``welcome.last_id`` is."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest
from websockets.asyncio.client import ClientConnection, connect

from tests.server import LiveclassServer

WAIT_S = 5.0
ERROR_FIELDS = {"t", "code", "message", "ref", "field", "retry_after_ms"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveclassServer]:
    data_dir: Path = tmp_path_factory.mktemp("wire")
    running = LiveclassServer(data_dir, args=["--rate-per-s", "2", "--rate-burst", "8"]).start()
    yield running
    running.stop()


async def send(ws: ClientConnection, **msg: Any) -> None:
    await ws.send(msgpack.packb(msg, use_bin_type=True))


async def answer(ws: ClientConnection, *types: str) -> dict[str, Any]:
    """The next frame of one of ``types``, skipping presence and events."""
    async with asyncio.timeout(WAIT_S):
        while True:
            frame: dict[str, Any] = msgpack.unpackb(await ws.recv(), raw=False)
            if frame["t"] in types:
                return frame


@pytest.fixture
async def teacher(server: LiveclassServer, request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    room = request.node.name.replace("[", "-").replace("]", "")[:60]
    async with connect(server.ws_url, compression=None) as ws:
        await send(ws, t="join", token=server.token("t1", "teacher", room), room=room, last_id=None)
        welcome = await answer(ws, "welcome")
        yield ws, room, welcome


async def test_an_error_frame_carries_every_documented_field(server: LiveclassServer) -> None:
    async with connect(server.ws_url, compression=None) as ws:
        await send(ws, t="hand.raise", ref=3)
        refused = await answer(ws, "error")
    assert refused.keys() == ERROR_FIELDS, refused
    assert (refused["code"], refused["ref"], refused["field"], refused["retry_after_ms"]) == (
        "not_joined",
        3,
        None,
        None,
    )


async def test_a_rate_limited_frame_names_retry_after_and_a_nil_field(
    teacher: tuple[ClientConnection, str, dict[str, Any]],
) -> None:
    ws, _, _ = teacher
    for ref in range(1, 12):
        await send(ws, t="ping", ref=ref)
    limited = await answer(ws, "error")
    assert limited.keys() == ERROR_FIELDS, limited
    assert limited["code"] == "rate_limited" and limited["field"] is None
    assert isinstance(limited["retry_after_ms"], int)


async def test_join_is_answered_without_a_ref(server: LiveclassServer) -> None:
    async with connect(server.ws_url, compression=None) as ws:
        await send(ws, t="join", token="not-a-token", room="r", last_id=None, ref=5)
        refused = await answer(ws, "error")
    assert refused.keys() == ERROR_FIELDS, refused
    assert (refused["code"], refused["ref"]) == ("token_invalid", None)


@pytest.mark.parametrize("reason", ["absent", "nil"])
async def test_an_optional_field_left_out_or_nil_is_accepted_alike(
    server: LiveclassServer, teacher: tuple[ClientConnection, str, dict[str, Any]], reason: str
) -> None:
    ws, room, _ = teacher
    async with connect(server.ws_url, compression=None) as student:
        await send(student, t="join", token=server.token("s1", "student", room), room=room)
        await answer(student, "welcome")
    optional = {} if reason == "absent" else {"reason": None}
    await send(ws, t="participant.remove", ref=1, identity="s1", **optional)
    removed = await answer(ws, "event", "error")
    while removed["t"] == "event" and removed["type"] != "participant.removed":
        removed = await answer(ws, "event", "error")
    assert removed["t"] == "event", removed
    assert removed["data"]["reason"] == ""
    assert (await answer(ws, "ack"))["ref"] == 1


async def test_welcome_last_id_is_the_newest_event_the_snapshot_includes(
    server: LiveclassServer, teacher: tuple[ClientConnection, str, dict[str, Any]]
) -> None:
    ws, room, first = teacher
    await send(ws, t="question.ask", ref=1, text="why?")
    ids = (await answer(ws, "ack"))["ids"]
    async with connect(server.ws_url, compression=None) as other:
        await send(other, t="join", token=server.token("s9", "student", room), room=room)
        welcome = await answer(other, "welcome")
    assert first["last_id"] < ids[-1] <= welcome["last_id"]
    assert [q["text"] for q in welcome["room"]["questions"]] == ["why?"]


async def test_resumed_missed_counts_the_visible_events_not_the_log_events(
    server: LiveclassServer, teacher: tuple[ClientConnection, str, dict[str, Any]]
) -> None:
    ws, room, _ = teacher
    async with connect(server.ws_url, compression=None) as other:
        await send(other, t="join", token=server.token("s-bo", "student", room), room=room)
        await answer(other, "welcome")
    async with connect(server.ws_url, compression=None) as ada:
        await send(ada, t="join", token=server.token("s-ada", "student", room), room=room)
        left_at = (await answer(ada, "welcome"))["last_id"]
    # While Ada is away: a private message to Bo (not hers to see) and one to everyone.
    await send(ws, t="chat.send", ref=1, text="just for Bo", to="s-bo")
    private = (await answer(ws, "ack"))["ids"]
    await send(ws, t="chat.send", ref=2, text="for everyone", to=None)
    public = (await answer(ws, "ack"))["ids"]
    assert len(private) == len(public) == 1
    async with connect(server.ws_url, compression=None) as ada:
        token = server.token("s-ada", "student", room)
        await send(ada, t="join", token=token, room=room, last_id=left_at)
        resumed = await answer(ada, "resumed")
        missed = await answer(ada, "event")
    assert resumed["last_id"] == public[0] and private[0] < public[0]
    assert resumed["missed"] == 1, resumed
    assert (missed["id"], missed["data"]["text"]) == (public[0], "for everyone")
