"""Bad input against a real ``liveclass serve``: each kind gets its documented error code
(docs/protocol.md, "Error codes" and "Close codes"), the server keeps serving everyone else, and
the room's state is unchanged.

Each case runs in its own room on one shared server: a teacher and a bystander student are
connected, the room has a question, an open poll with an answer, chat lines (one private) and a
raised hand. A fresh staff observer's ``welcome`` snapshot is taken before and after the bad input
and must be equal (``last_id`` too: nothing was appended); only then does the bystander chat, to
prove the room still serves.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import msgpack
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from clients.sdk import ClassroomClient
from rooms import Role
from signaling import Grants, Keyring, mint
from tests.server import LiveclassServer

WAIT_S = 5.0
ACTOR = "s2"
INTRUDER = "x1"


def pack(msg: dict[str, Any]) -> bytes:
    return msgpack.packb(msg, use_bin_type=True)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def open_raw(url: str) -> ClientConnection:
    return await connect(url, compression=None, max_size=None, ping_interval=None)


async def next_frame(ws: ClientConnection, *types: str, timeout: float = WAIT_S) -> dict[str, Any]:
    """The next frame of one of ``types``, skipping others (presence, events)."""
    async with asyncio.timeout(timeout):
        while True:
            data = await ws.recv()
            assert isinstance(data, bytes), f"server sent a text frame: {data!r}"
            msg: dict[str, Any] = msgpack.unpackb(data, raw=False)
            if msg["t"] in types:
                return msg


async def close_code(ws: ClientConnection, timeout: float = WAIT_S) -> int | None:
    """Read until the server closes; return the close code it sent."""
    async with asyncio.timeout(timeout):
        with contextlib.suppress(ConnectionClosed):
            while True:
                await ws.recv()
    return ws.close_code


async def still_open(ws: ClientConnection, *, joined: bool, ref: int = 999_999) -> None:
    """The connection goes on: a joined one answers a ping with its pong, an unjoined one
    answers a command with ``not_joined``."""
    if joined:
        await ws.send(pack({"t": "ping", "ref": ref}))
        answer = await next_frame(ws, "pong", "error")
        assert (answer["t"], answer["ref"]) == ("pong", ref), answer
    else:
        await ws.send(pack({"t": "hand.raise", "ref": ref}))
        answer = await next_frame(ws, "error")
        assert (answer["code"], answer["ref"]) == ("not_joined", ref), answer


@dataclass
class Room:
    """A live room on the server with a teacher and a bystander student connected."""

    server: LiveclassServer
    room_id: str
    teacher: ClassroomClient
    bystander: ClassroomClient

    def token(self, identity: str, role: str = "student", **kwargs: Any) -> str:
        return self.server.token(identity, role, self.room_id, **kwargs)

    def join_frame(self, token: str, room: str | None = None) -> bytes:
        return pack({"t": "join", "token": token, "room": room or self.room_id, "last_id": None})

    async def snapshot(self) -> tuple[dict[str, Any], int]:
        """A fresh staff observer's ``welcome.room`` and ``welcome.last_id``."""
        async with self.client("observer", "assistant") as observer:
            return observer.session.room, observer.session.last_id

    def client(self, identity: str, role: str = "student") -> ClassroomClient:
        return client_for(self.server, self.room_id, identity, role)

    async def raw_joined(self, identity: str = ACTOR) -> ClientConnection:
        """A raw connection that joined as ``identity`` and got its welcome."""
        ws = await open_raw(self.server.ws_url)
        await ws.send(self.join_frame(self.token(identity)))
        welcome = await next_frame(ws, "welcome", "error")
        assert welcome["t"] == "welcome", welcome
        return ws

    async def seed(self) -> None:
        """Give the room state that bad input could damage."""
        await self.bystander.ask("What is a monad?")
        await self.teacher.open_poll("Tea or coffee?", ["tea", "coffee"])
        await self.bystander.answer_poll(1, [0])
        await self.teacher.chat("Welcome, everyone")
        await self.bystander.chat("Hi!")
        await self.bystander.chat("psst, a private question", to="staff")
        await self.bystander.raise_hand()

    async def assert_serving(self, label: str) -> None:
        """The bystander's command is acknowledged and the teacher receives its event."""
        text = f"still here after {label}"
        ack = await self.bystander.chat(text)
        assert len(ack["ids"]) == 1
        event = await self.teacher.wait_for(
            lambda e: e.type == "chat.message" and e.data["text"] == text, timeout=WAIT_S
        )
        assert event.id == ack["ids"][0]


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveclassServer]:
    """One server for the table; every case gets its own room, so cases cannot interfere."""
    data_dir: Path = tmp_path_factory.mktemp("bad-input")
    server = LiveclassServer(data_dir).start()
    yield server
    server.stop()


def client_for(
    server: LiveclassServer, room_id: str, identity: str, role: str = "student"
) -> ClassroomClient:
    token = server.token(identity, role, room_id)
    return ClassroomClient(server.ws_url, token, room_id, reconnect=False)


@contextlib.asynccontextmanager
async def live_room(
    server: LiveclassServer, room_id: str, *, seed: bool = True
) -> AsyncIterator[Room]:
    """A room with teacher ``t1`` and bystander student ``s1`` connected (and seeded)."""
    async with (
        client_for(server, room_id, "t1", "teacher") as teacher,
        client_for(server, room_id, "s1") as bystander,
    ):
        room = Room(server, room_id, teacher, bystander)
        if seed:
            await room.seed()
        yield room


# The table


@dataclass(frozen=True)
class Case:
    """One bad input.

    ``frames`` builds what to send from the room; ``joined`` says whether it is sent on a
    connection that joined as a student (else on a fresh, unjoined one). ``code`` is the error
    frame's code (None: no error frame), ``field`` and ``ref`` what it must name, ``close`` the
    close code that must follow (None: the connection goes on).
    """

    id: str
    frames: Callable[[Room], bytes | str]
    code: str | None
    joined: bool = True
    field: str | None = None
    ref: int | None = None
    close: int | None = None


def frame(**msg: Any) -> Callable[[Room], bytes]:
    data = pack(msg)
    return lambda room: data


def join_with(make_token: Callable[[Room], str]) -> Callable[[Room], bytes]:
    return lambda room: room.join_frame(make_token(room))


def forged_token(room: Room) -> str:
    forger = Keyring({"test": secrets.token_bytes(48)}, "test")
    grants = Grants(room.room_id, Role.TEACHER)
    return mint(forger, identity=INTRUDER, name="Mallory", grants=grants, ttl_s=600)


def token_claims(room: Room, role: str = "teacher") -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": "liveclass",
        "sub": INTRUDER,
        "name": "Mallory",
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "grants": {"room": room.room_id, "role": role, "can_publish": True, "can_subscribe": True},
    }


def unsigned_token(room: Room) -> str:
    header = {"alg": "none", "typ": "JWT", "kid": "test"}
    parts = [json.dumps(header).encode(), json.dumps(token_claims(room)).encode()]
    return ".".join(b64url(p) for p in parts) + "."


def unknown_kid_token(room: Room) -> str:
    rotated = Keyring({"retired": room.server.secret.encode()}, "retired")
    grants = Grants(room.room_id, Role.STUDENT)
    return mint(rotated, identity=INTRUDER, name="Mallory", grants=grants, ttl_s=600)


def slash_room_token(room: Room) -> str:
    """A validly signed token for room ``<room>/b1`` (``mint`` refuses to make one)."""
    claims = token_claims(room, "student")
    claims["grants"]["room"] = f"{room.room_id}/b1"
    return jwt.encode(
        claims, room.server.secret.encode(), algorithm="HS256", headers={"kid": "test"}
    )


def hs512_token(room: Room) -> str:
    secret = room.server.secret.encode()
    return jwt.encode(token_claims(room), secret, algorithm="HS512", headers={"kid": "test"})


def escalated_token(room: Room) -> str:
    """A valid student token whose claims were edited to teacher, keeping the signature."""
    header, _, signature = room.token(INTRUDER).split(".")
    claims = b64url(json.dumps(token_claims(room, "teacher")).encode())
    return f"{header}.{claims}.{signature}"


STUDENT_STAFF_COMMANDS = [
    ("question.answer", {"question_id": 1}),
    ("question.dismiss", {"question_id": 1}),
    ("question.pin", {"question_id": 1, "pinned": True}),
    ("poll.open", {"question": "Pop quiz?", "options": ["a", "b"], "multiple": False}),
    ("poll.close", {"poll_id": 1}),
    ("hand.call_next", {}),
    ("hand.lower_all", {}),
    ("hand.lower", {"identity": "s1"}),
    ("chat.mute", {"identity": "s1", "muted": True}),
    ("chat.mute", {"identity": None, "muted": True}),
    ("participant.remove", {"identity": "s1", "reason": "bye"}),
    ("room.lock", {"locked": True}),
    ("session.end", {"reason": "class dismissed"}),
]

CASES = [
    # Frames that are not protocol
    Case("not-msgpack", lambda room: b"\xc1\xff\x00garbage", "bad_frame"),
    Case("msgpack-array", lambda room: msgpack.packb([1, 2, 3]), "bad_frame"),
    Case("trailing-bytes", lambda room: pack({"t": "ping", "ref": 3}) + b"\x00", "bad_frame"),
    Case("t-missing", frame(ref=4, text="hi"), "bad_frame", ref=4),
    Case("t-not-a-string", frame(t=7, ref=5), "bad_frame", ref=5),
    Case("text-frame", lambda room: '{"t": "chat.send", "ref": 6, "text": "hi"}', "text_frame"),
    Case("unknown-type", frame(t="hand.wave", ref=7), "unknown_type", ref=7),
    # Missing or wrongly typed fields
    Case("missing-field", frame(t="question.ask", ref=8), "missing_field", field="text", ref=8),
    Case("missing-ref", frame(t="question.ask", text="why?"), "missing_field", field="ref"),
    Case(
        "string-for-int",
        frame(t="question.upvote", ref=9, question_id="1"),
        "bad_field",
        field="question_id",
        ref=9,
    ),
    Case(
        "bool-for-int",
        frame(t="question.upvote", ref=10, question_id=True),
        "bad_field",
        field="question_id",
        ref=10,
    ),
    Case("nil-text", frame(t="question.ask", ref=11, text=None), "bad_field", field="text", ref=11),
    Case(
        "array-of-strings-for-ints",
        frame(t="poll.answer", ref=12, poll_id=1, choices=["1"]),
        "bad_field",
        field="choices",
        ref=12,
    ),
    Case(
        "int-too-large",
        frame(t="poll.close", ref=13, poll_id=2**64 - 1),
        "bad_field",
        field="poll_id",
        ref=13,
    ),
    Case("ref-wrong-type", frame(t="ping", ref="x"), "bad_field", field="ref"),
    Case(
        "empty-chat-text", frame(t="chat.send", ref=14, text=""), "bad_field", field="text", ref=14
    ),
    Case(
        "join-without-token",
        lambda room: pack({"t": "join", "room": room.room_id}),
        "missing_field",
        joined=False,
        field="token",
    ),
    Case(
        "join-last-id-wrong-type",
        lambda room: pack(
            {"t": "join", "token": room.token(INTRUDER), "room": room.room_id, "last_id": "7"}
        ),
        "bad_field",
        joined=False,
        field="last_id",
    ),
    # Sizes
    Case(
        "frame-over-16-kib",
        frame(t="chat.send", ref=15, text="x" * 20_000),
        "frame_too_large",
        ref=15,
    ),
    Case("frame-over-64-kib", frame(t="chat.send", ref=16, text="x" * 70_000), None, close=1009),
    # Session order
    Case(
        "command-before-join",
        frame(t="chat.send", ref=17, text="hi"),
        "not_joined",
        joined=False,
        ref=17,
    ),
    Case(
        "second-join",
        lambda room: room.join_frame(room.token(ACTOR)),
        "already_joined",
    ),
    # Tokens
    Case(
        "expired-token",
        join_with(lambda room: room.token(INTRUDER, now=time.time() - 7200, ttl_s=3600)),
        "token_expired",
        joined=False,
        close=4401,
    ),
    Case(
        "token-not-yet-valid",
        join_with(lambda room: room.token(INTRUDER, now=time.time() + 3600)),
        "token_expired",
        joined=False,
        close=4401,
    ),
    Case("bad-signature", join_with(forged_token), "token_invalid", joined=False, close=4401),
    Case("alg-none", join_with(unsigned_token), "token_invalid", joined=False, close=4401),
    Case("alg-hs512", join_with(hs512_token), "token_invalid", joined=False, close=4401),
    Case("unknown-kid", join_with(unknown_kid_token), "token_invalid", joined=False, close=4401),
    Case("escalated-claims", join_with(escalated_token), "token_invalid", joined=False, close=4401),
    Case(
        "malformed-token",
        join_with(lambda room: "not-a-jwt"),
        "token_invalid",
        joined=False,
        close=4401,
    ),
    Case(
        "token-for-another-room",
        join_with(lambda room: room.server.token(INTRUDER, "teacher", room="another-room")),
        "token_wrong_room",
        joined=False,
        close=4403,
    ),
    # Room ids (issue 12, item 9): the board-name alphabet, so "X/b1" names no breakout room
    Case(
        "join-room-with-slash",
        lambda room: pack(
            {"t": "join", "token": room.token(INTRUDER), "room": f"{room.room_id}/b1"}
        ),
        "bad_field",
        joined=False,
        field="room",
    ),
    Case(
        "token-for-a-room-with-slash",
        join_with(lambda room: slash_room_token(room)),
        "token_invalid",
        joined=False,
        close=4401,
    ),
    # A student sending staff commands
    *(
        Case(
            f"student-sends-{type_}" + ("-all" if fields.get("identity", 0) is None else ""),
            frame(t=type_, ref=100 + n, **fields),
            "not_allowed",
            ref=100 + n,
        )
        for n, (type_, fields) in enumerate(STUDENT_STAFF_COMMANDS)
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_bad_input_gets_its_error_and_leaves_the_room_serving_and_unchanged(
    shared_server: LiveclassServer, case: Case
) -> None:
    async with live_room(shared_server, f"bad-{case.id.replace('.', '-')}") as room:
        ws = await (room.raw_joined() if case.joined else open_raw(shared_server.ws_url))
        try:
            before = await room.snapshot()
            await ws.send(case.frames(room))
            if case.code is not None:
                error = await next_frame(ws, "error")
                assert error["code"] == case.code, error
                assert isinstance(error["message"], str) and error["message"]
                assert error.get("ref") == case.ref, error
                if case.field is not None:
                    assert error.get("field") == case.field, error
            if case.close is not None:
                assert await close_code(ws) == case.close
            else:
                await still_open(ws, joined=case.joined)
            assert await room.snapshot() == before
        finally:
            await ws.close()
        await room.assert_serving(case.id)


# Cases that need more than one frame


async def test_removed_participant_is_closed_4403_and_their_token_refused(
    shared_server: LiveclassServer,
) -> None:
    async with live_room(shared_server, "bad-removed") as room:
        token = room.token(ACTOR)
        async with room.client(ACTOR) as removed:
            await removed.ask("Can I stay?")
            await room.teacher.remove(ACTOR, "disruptive")
            await removed.wait_until(lambda: removed.closed_with is not None, timeout=WAIT_S)
            assert removed.closed_with is not None and removed.closed_with[0] == 4403
            assert [e["code"] for e in removed.session.errors] == ["participant_removed"]
        await room.teacher.wait_for(
            lambda e: e.type == "participant.removed" and e.data["identity"] == ACTOR,
            timeout=WAIT_S,
        )
        before = await room.snapshot()

        ws = await open_raw(shared_server.ws_url)
        await ws.send(room.join_frame(token))
        error = await next_frame(ws, "error")
        assert error["code"] == "participant_removed"
        assert await close_code(ws) == 4403

        assert await room.snapshot() == before
        await room.assert_serving("a removed participant came back")


async def test_student_staff_command_on_a_missing_target_is_not_allowed_rather_than_not_found(
    shared_server: LiveclassServer,
) -> None:
    """The role is checked before the target, so a student cannot probe which ids exist."""
    async with live_room(shared_server, "bad-missing-targets") as room:
        ws = await room.raw_joined()
        try:
            before = await room.snapshot()
            await ws.send(pack({"t": "question.answer", "ref": 1, "question_id": 99}))
            await ws.send(pack({"t": "poll.close", "ref": 2, "poll_id": 99}))
            first, second = await next_frame(ws, "error"), await next_frame(ws, "error")
            assert [(e["code"], e["ref"]) for e in (first, second)] == [
                ("not_allowed", 1),
                ("not_allowed", 2),
            ]
            assert await room.snapshot() == before
        finally:
            await ws.close()
        await room.assert_serving("probing for ids")


async def test_flood_past_the_rate_limit_is_refused_and_only_acked_commands_take_effect(
    make_server: Callable[..., LiveclassServer],
) -> None:
    rate, burst, flood = 5, 5, 30
    server = make_server("--rate-per-s", str(rate), "--rate-burst", str(burst))
    async with live_room(server, "flood", seed=False) as room:
        teacher = room.teacher
        await teacher.chat("Welcome, everyone")
        await room.bystander.ask("Is this on the test?")
        ws = await room.raw_joined()
        before_room, before_id = await room.snapshot()

        started = time.monotonic()
        for ref in range(1, flood + 1):
            await ws.send(pack({"t": "chat.send", "ref": ref, "text": f"flood {ref}"}))
        answers: dict[int, dict[str, Any]] = {}
        while len(answers) < flood:
            answer = await next_frame(ws, "ack", "error")
            assert answer["ref"] not in answers
            answers[answer["ref"]] = answer
        elapsed = time.monotonic() - started

        acked = sorted(ref for ref, a in answers.items() if a["t"] == "ack")
        refused = [a for a in answers.values() if a["t"] == "error"]
        assert refused, "no frame of the flood was rate limited"
        assert {a["code"] for a in refused} == {"rate_limited"}
        assert all(
            isinstance(a["retry_after_ms"], int) and a["retry_after_ms"] > 0 for a in refused
        )
        # At most the burst is saved up when the flood starts, plus what refills during it.
        assert 1 <= len(acked) <= burst + rate * elapsed + 1, (len(acked), elapsed)

        await asyncio.sleep(max(a["retry_after_ms"] for a in refused) / 1000)
        await still_open(ws, joined=True)
        await ws.close()

        after_room, after_id = await room.snapshot()
        assert after_id == before_id + len(acked)
        assert after_room["chat"][: len(before_room["chat"])] == before_room["chat"]
        flooded = after_room["chat"][len(before_room["chat"]) :]
        assert [m["text"] for m in flooded] == [f"flood {ref}" for ref in acked]
        assert {k: v for k, v in after_room.items() if k != "chat"} == {
            k: v for k, v in before_room.items() if k != "chat"
        }

        await room.assert_serving("a flood")
        seen = [e.data["text"] for e in teacher.session.events if e.data.get("from") == ACTOR]
        assert seen == [f"flood {ref}" for ref in acked]
