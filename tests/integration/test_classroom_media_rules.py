"""Media rules and breakout rooms as room commands over real WebSockets to a `liveclass serve`:
who may send them, the errors they get, the events everyone receives, and the RoomView a
newcomer's welcome carries. (What the SFU then forwards is tests/integration/test_media_rules.py.)
"""

from __future__ import annotations

import pytest

from clients import ClassroomClient, CommandFailed
from tests.integration.classroom import client, close_all, connect_all, wait_all
from tests.server import LiveclassServer


def types_seen(c: ClassroomClient, prefix: str) -> list[str]:
    return [e.type for e in c.session.events if e.type.startswith(prefix)]


async def refused(c: ClassroomClient, type_: str, **fields: object) -> tuple[str, str | None]:
    """The (code, field) of the error ``type_`` gets."""
    with pytest.raises(CommandFailed) as error:
        await c.request(type_, **fields)
    return error.value.code, error.value.field


async def test_staff_set_the_media_rules_and_everyone_sees_them(server: LiveclassServer) -> None:
    teacher, assistant = client(server, "t", "teacher"), client(server, "a", "assistant")
    alice, bob = client(server, "alice"), client(server, "bob")
    everyone = [teacher, assistant, alice, bob]
    await connect_all(everyone)
    newcomers: list[ClassroomClient] = []
    try:
        assert await refused(alice, "media.mode", mode="lecture") == ("not_allowed", None)
        assert await refused(teacher, "media.mode", mode="webinar") == ("bad_field", "mode")
        await teacher.request("media.mode", mode="lecture")
        assert (await assistant.request("media.mode", mode="lecture"))["ids"] == []

        await teacher.request("media.mute", source="camera", muted=True, identity="alice")
        await assistant.request("media.mute", source="camera", muted=True)  # every student
        await teacher.request("media.mute", source="screen", muted=True, identity="a")
        assert await refused(
            assistant, "media.mute", source="microphone", muted=True, identity="t"
        ) == ("not_allowed", "identity")
        assert await refused(
            assistant, "media.mute", source="camera", muted=False, identity="a"
        ) == (
            "not_allowed",
            "identity",
        )
        assert await refused(teacher, "media.mute", source="speaker", muted=True) == (
            "bad_field",
            "source",
        )
        assert await refused(
            alice, "media.mute", source="camera", muted=False, identity="alice"
        ) == ("not_allowed", None)
        assert await refused(
            teacher, "media.mute", source="camera", muted=True, identity="zed"
        ) == (
            "no_such_participant",
            "identity",
        )

        await teacher.request("media.permit", identity="bob", allowed=True)
        assert await refused(teacher, "media.permit", identity="a", allowed=True) == (
            "not_allowed",
            "identity",
        )
        last = (await assistant.request("media.spotlight", identity="bob"))["ids"][0]
        await wait_all(everyone, last)
        for c in everyone:
            assert types_seen(c, "media.") == [
                "media.mode_changed",
                "media.muted",
                "media.muted",
                "media.muted",
                "media.permitted",
                "media.spotlighted",
            ]

        carol = client(server, "carol")
        newcomers.append(carol)
        await carol.connect()
        assert carol.session.room["media"] == {
            "mode": "lecture",
            "muted": [
                {"identity": "a", "source": "screen"},
                {"identity": "alice", "source": "camera"},
            ],
            "muted_all": ["camera"],
            "permitted": ["bob"],
            "spotlight": "bob",
        }

        # Unmuting the camera of every student lifts Alice's own mute, not the assistant's.
        await teacher.request("media.mute", source="camera", muted=False)
        await teacher.request("media.spotlight", identity=None)
        dave = client(server, "dave")
        newcomers.append(dave)
        await dave.connect()
        media = dave.session.room["media"]
        assert media["muted"] == [{"identity": "a", "source": "screen"}]
        assert (media["muted_all"], media["spotlight"]) == ([], None)
    finally:
        await close_all([*everyone, *newcomers])


async def test_breakout_rooms_open_fill_and_close(server: LiveclassServer) -> None:
    teacher, assistant = client(server, "t", "teacher"), client(server, "a", "assistant")
    alice, bob = client(server, "alice"), client(server, "bob")
    everyone = [teacher, assistant, alice, bob]
    await connect_all(everyone)
    newcomers: list[ClassroomClient] = []
    try:
        assert await refused(alice, "breakout.open", rooms=["red"]) == ("not_allowed", None)
        assert await refused(teacher, "breakout.open", rooms=["red", "red"]) == (
            "bad_field",
            "rooms",
        )
        assert await refused(teacher, "breakout.open", rooms=["   "]) == ("bad_field", "rooms")
        assert await refused(teacher, "breakout.open", rooms="red") == ("bad_field", "rooms")
        assert await refused(teacher, "breakout.move", identity="alice", room="red") == (
            "no_such_breakout",
            "room",
        )
        assert (await teacher.request("breakout.close"))["ids"] == []

        await teacher.request("breakout.open", rooms=["red", "blue"])
        assert await refused(assistant, "breakout.open", rooms=["green"]) == (
            "breakouts_open",
            None,
        )
        assert await refused(teacher, "breakout.move", identity="alice", room="green") == (
            "no_such_breakout",
            "room",
        )
        assert await refused(teacher, "breakout.move", identity="zed", room="red") == (
            "no_such_participant",
            "identity",
        )
        assert await refused(alice, "breakout.move", identity="alice", room="red") == (
            "not_allowed",
            None,
        )
        await teacher.request("breakout.move", identity="alice", room="red")
        await assistant.request("breakout.move", identity="bob", room="blue")
        await assistant.request("breakout.move", identity="a", room="blue")
        assert (await teacher.request("breakout.move", identity="bob", room="blue"))["ids"] == []

        carol = client(server, "carol")
        newcomers.append(carol)
        await carol.connect()
        breakouts = carol.session.room["breakouts"]
        assert breakouts["rooms"] == ["red", "blue"]
        assert breakouts["boards"] == ["br1-1", "br1-2"]
        assert breakouts["members"] == {"a": "blue", "alice": "red", "bob": "blue"}

        await teacher.request("breakout.move", identity="bob")  # back to the main room
        last = (await assistant.request("breakout.close"))["ids"][0]
        await wait_all([*everyone, carol], last)
        for c in everyone:
            assert types_seen(c, "breakout.") == [
                "breakout.opened",
                *["breakout.moved"] * 4,
                "breakout.closed",
            ]
        closed = [e for e in carol.session.events if e.type == "breakout.closed"]
        assert closed and closed[0].data == {"by": "a", "round": 1, "reason": "staff"}

        dave = client(server, "dave")
        newcomers.append(dave)
        await dave.connect()
        breakouts = dave.session.room["breakouts"]
        assert (breakouts["rooms"], breakouts["members"], breakouts["round"]) == ([], {}, 1)
        assert [g["board"] for g in breakouts["gallery"]] == []  # shown to students when shared
    finally:
        await close_all([*everyone, *newcomers])
