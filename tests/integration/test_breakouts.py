"""Breakout rooms over real WebSockets to one embedded ``liveclass serve``: a move sends the moved
student a ``view`` and scoped events stay in their room; saved groups outlive a restart and open
the same assignment in a new room; a student away while the breakouts closed comes back to the
main room; the timer closes the breakouts by itself; bad input changes nothing
(docs/protocol.md, "Breakout rooms", "Saved breakout groups", "Changes of place")."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from tests.integration.breakout_clients import RecordingClient, leaks, refused
from tests.integration.classroom import close_all, connect_all, wait_all
from tests.server import LiveclassServer

RED, BLUE = "Red team", "Blue team"


@pytest.fixture
async def made() -> AsyncIterator[list[RecordingClient]]:
    clients: list[RecordingClient] = []
    yield clients
    await close_all(clients)


def make_client(
    server: LiveclassServer, made: list[RecordingClient]
) -> Callable[..., RecordingClient]:
    def make(
        identity: str, role: str = "student", room: str = "class", **kw: Any
    ) -> RecordingClient:
        c = RecordingClient(
            server.ws_url, server.token(identity, role, room), room, backoff=(0.05, 0.5), **kw
        )
        made.append(c)
        return c

    return make


async def test_a_move_sends_a_view_and_scoped_events_stay_in_their_room(
    server: LiveclassServer, made: list[RecordingClient]
) -> None:
    new = make_client(server, made)
    teacher, alice, bob, carol = new("t", "teacher"), new("alice"), new("bob"), new("carol")
    await connect_all([teacher, alice, bob, carol])
    opened = await teacher.request(
        "breakout.open", rooms=[RED, BLUE], members={"alice": RED, "bob": BLUE}
    )
    await wait_all([alice, bob, carol], opened["ids"][-1])
    # The assigned students were sent their new place; carol stays in the main room.
    assert [v["room"]["breakouts"]["members"]["alice"] for v in alice.views()] == [RED]
    assert len(bob.views()) == 1 and carol.views() == []
    assert alice.views()[0]["last_id"] == opened["ids"][-1]

    await alice.chat("red says hi")
    await bob.chat("blue says hi")
    await carol.chat("main says hi")
    await alice.request("question.ask", text="red question?")
    staff_line = await teacher.request("chat.send", text="to blue", room=BLUE)
    await wait_all([teacher], staff_line["ids"][-1])

    moved = await teacher.request("breakout.move", identity="alice", room=BLUE)
    await wait_all([alice, bob], moved["ids"][-1])
    view = alice.views()[-1]
    assert view["last_id"] == moved["ids"][-1]
    # Her view is of the blue room now: its chat, not the red room's.
    texts = [m["text"] for m in view["room"]["chat"]]
    assert "blue says hi" in texts and "to blue" in texts and "red says hi" not in texts
    assert view["room"]["questions"] == []
    # No event at or below the view's id came after it.
    after = alice.frames[alice.frames.index(view) + 1 :]
    assert all(f["id"] > view["last_id"] for f in after if f.get("t") == "event")

    last = (await bob.chat("welcome alice"))["ids"][-1]
    await wait_all([alice, bob], last)
    await carol.ping()  # the pong comes after every event carol was sent before it
    assert "welcome alice" in [e.data["text"] for e in alice.events_of("chat.message")]
    for student in (alice, bob, carol):
        assert leaks(student) == [], student.identity
    assert [e.data["text"] for e in carol.events_of("chat.message")] == ["main says hi"]


async def test_saved_groups_survive_a_restart_and_open_the_same_assignment_in_a_new_room(
    make_server: Callable[..., LiveclassServer], made: list[RecordingClient]
) -> None:
    server = make_server()
    new = make_client(server, made)
    teacher = new("t", "teacher")
    await teacher.connect()
    members = {"s1": RED, "s2": BLUE, "s3": RED, "absent": BLUE}
    await teacher.request("breakout.groups.save", name="Week 3", rooms=[RED, BLUE], members=members)
    await close_all([teacher])
    server.stop()
    server.start()  # the same data directory

    new = make_client(server, made)
    teacher = new("t", "teacher", room="class2")
    students = [new(f"s{i}", room="class2") for i in (1, 2, 3)]
    await connect_all([teacher, *students])
    listed = await teacher.request("breakout.groups.list")
    assert listed["groups"] == [{"name": "Week 3", "rooms": [RED, BLUE], "members": members}]
    opened = await teacher.request("breakout.open", groups="Week 3")
    await wait_all(students, opened["ids"][-1])
    event = teacher.events_of("breakout.opened")[-1]
    assert event.data["rooms"] == [RED, BLUE]
    # "absent" is no participant of this room: left out.
    assert event.data["members"] == {"s1": RED, "s2": BLUE, "s3": RED}
    assert [s.views()[-1]["room"]["breakouts"]["members"][s.identity] for s in students] == [
        RED,
        BLUE,
        RED,
    ]
    await teacher.request("breakout.close")
    assert await refused(teacher, "breakout.open", groups="Week 4") == ("bad_field", "groups")


async def test_a_student_away_while_the_breakouts_closed_comes_back_to_the_main_room(
    server: LiveclassServer, made: list[RecordingClient]
) -> None:
    new = make_client(server, made)
    teacher, alice = new("t", "teacher"), new("alice", reconnect=False)
    await connect_all([teacher, alice])
    opened = await teacher.request("breakout.open", rooms=[RED, BLUE], members={"alice": RED})
    await wait_all([alice], opened["ids"][-1])
    await alice.chat("in red")
    seen = alice.session.last_id
    await alice.close()

    await teacher.request("chat.send", text="main while away")
    closed = await teacher.request("breakout.close")
    back = new("alice", resume_from=seen)
    greeting = await back.connect()
    assert greeting["t"] == "welcome"  # not resumed: her place changed while she was away
    assert greeting["last_id"] >= closed["ids"][-1]
    room = greeting["room"]
    assert room["breakouts"]["members"] == {} and room["breakouts"]["rooms"] == []
    assert "main while away" in [m["text"] for m in room["chat"]]
    assert "in red" not in [m["text"] for m in room["chat"]]

    # A resume whose range does not change her place is still a resume.
    seen = back.session.last_id
    await back.close()
    await teacher.request("chat.send", text="after")
    again = new("alice", resume_from=seen)
    assert (await again.connect())["t"] == "resumed"


async def test_the_timer_closes_the_breakouts_at_zero(
    server: LiveclassServer, made: list[RecordingClient]
) -> None:
    new = make_client(server, made)
    teacher, alice = new("t", "teacher"), new("alice")
    await connect_all([teacher, alice])
    opened = await teacher.request(
        "breakout.open", rooms=[RED], members={"alice": RED}, duration_s=2, warn_s=1
    )
    opened_event = teacher.events_of("breakout.opened")[-1]
    assert opened_event.id == opened["ids"][0]
    ends_at = alice.views()[-1]["room"]["breakouts"]["ends_at"]
    assert ends_at == opened_event.ts + 2000
    closed = await alice.wait_for(lambda e: e.type == "breakout.closed", timeout=6)
    assert closed.data["reason"] == "timer" and closed.data["by"] is None
    assert closed.ts >= ends_at
    await alice.wait_until(lambda: alice.views()[-1]["last_id"] == closed.id)
    assert alice.views()[-1]["room"]["breakouts"]["members"] == {}
    await asyncio.sleep(0.3)
    assert len(teacher.events_of("breakout.closed")) == 1


async def test_bad_breakout_input_gets_its_error_and_changes_nothing(
    server: LiveclassServer, made: list[RecordingClient]
) -> None:
    new = make_client(server, made)
    teacher, alice, bob = new("t", "teacher"), new("alice"), new("bob")
    await connect_all([teacher, alice, bob])
    await teacher.ping()
    before = teacher.session.last_id

    staff_commands: list[tuple[str, dict[str, Any]]] = [
        ("breakout.open", {"rooms": [RED]}),
        ("breakout.assign", {"members": {"alice": RED}}),
        ("breakout.move", {"identity": "bob", "room": RED}),
        ("breakout.timer", {"remaining_s": 60}),
        ("breakout.broadcast", {"text": "hi"}),
        ("breakout.close", {}),
        ("breakout.share_boards", {"shared": True}),
        ("breakout.groups.save", {"name": "g", "rooms": [RED], "members": {}}),
        ("breakout.groups.list", {}),
    ]
    for type_, fields in staff_commands:
        assert (await refused(alice, type_, **fields))[0] == "not_allowed", type_
    assert await refused(teacher, "breakout.open", rooms=[f"r{i}" for i in range(51)]) == (
        "bad_field",
        "rooms",
    )
    for duration in (-1, 0, 86_401):
        assert await refused(teacher, "breakout.open", rooms=[RED], duration_s=duration) == (
            "bad_field",
            "duration_s",
        )
    assert await refused(teacher, "breakout.open", rooms=[RED], members={"ghost": RED}) == (
        "no_such_participant",
        "members",
    )
    await teacher.ping()
    assert teacher.session.last_id == before  # nothing was appended

    opened = await teacher.request("breakout.open", rooms=[RED, BLUE])
    before = opened["ids"][-1]
    assert await refused(alice, "breakout.choose", room=RED) == ("not_allowed", "room")
    assert (await refused(alice, "breakout.help_done", identity="bob"))[0] == "not_allowed"
    assert (await refused(alice, "breakout.move", identity="alice", room=RED))[0] == "not_allowed"
    assert (await refused(alice, "chat.send", text="hi", room=RED))[0] == "not_allowed"
    for remaining in (-1, 86_401):
        assert await refused(teacher, "breakout.timer", remaining_s=remaining) == (
            "bad_field",
            "remaining_s",
        )
    assert (await refused(teacher, "breakout.assign", members={"ghost": RED}))[0] == (
        "no_such_participant"
    )
    await teacher.ping()
    assert teacher.session.last_id == before
    await teacher.request("breakout.close")

    opened = await teacher.request("breakout.open", rooms=[RED, BLUE], self_select=True, cap=1)
    await alice.request("breakout.choose", room=RED)
    await teacher.ping()
    before = teacher.session.last_id
    assert await refused(bob, "breakout.choose", room=RED) == ("breakout_full", "room")
    await teacher.ping()
    assert teacher.session.last_id == before
    assert teacher.session.room is not None
    # The room goes on: bob picks the other room.
    await bob.request("breakout.choose", room=BLUE)


async def test_a_room_loaded_after_its_breakouts_ended_closes_them_at_once(
    make_server: Callable[..., LiveclassServer], made: list[RecordingClient]
) -> None:
    server = make_server("--room-idle-s", "0.2")
    new = make_client(server, made)
    teacher, alice = new("t", "teacher", reconnect=False), new("alice", reconnect=False)
    await connect_all([teacher, alice])
    await teacher.request("breakout.open", rooms=[RED], members={"alice": RED}, duration_s=1)
    await close_all([teacher, alice])
    await asyncio.sleep(1.5)  # the room was unloaded (idle) before its breakouts ended
    back = new("alice")
    await back.connect()
    # Closed when the join loaded the room: in its welcome already, or in a view just after.
    await back.wait_until(lambda: back.session.room["breakouts"]["rooms"] == [], 3)
    assert back.session.room["breakouts"]["members"] == {}
    assert back.session.room["breakouts"]["round"] == 1
