"""The SDK's breakout helpers against a real ``liveclass serve``: every command through its helper,
the session's place and countdown following the server, ``view`` frames replacing the snapshot,
and the documented errors reaching the caller as :class:`clients.CommandFailed`."""

from __future__ import annotations

import time

import pytest

from clients import ClassroomClient, CommandFailed
from tests.integration.classroom import client, close_all, connect_all
from tests.server import LiveclassServer


def chat_rooms(c: ClassroomClient) -> list[tuple[str | None, str]]:
    """(room, text) of the room-wide chat lines ``c`` received, broadcasts included."""
    return [
        (e.data.get("room"), e.data["text"])
        for e in c.session.events
        if e.type == "chat.message" and e.data.get("thread") is None
    ]


async def test_a_whole_round_through_the_sdk_helpers(server: LiveclassServer) -> None:
    teacher = client(server, "t", "teacher")
    students = [client(server, name) for name in ("ann", "ben", "cat", "dan")]
    ann, ben, _, dan = students
    await connect_all([teacher, *students])
    try:
        before = time.time() * 1000
        await teacher.open_breakouts(
            ["Red team", "Blue"],
            members={"ann": "Red team"},
            auto=True,
            apart=[("ben", "cat")],
            duration_s=600,
            warn_s=30,
        )
        for c in students:
            await c.wait_until(lambda c=c: c.session.place is not None)
        places = {c.session.identity: c.session.place for c in students}
        assert places["ann"] == "Red team" and places["ben"] != places["cat"], places
        assert places == teacher.session.breakouts.members  # every student's own view agrees
        for c in [teacher, *students]:
            b = c.session.breakouts
            assert b.rooms == ["Red team", "Blue"] and b.round == 1 and b.warn_s == 30
            assert b.boards == ["br1-1", "br1-2"]
            assert b.ends_at is not None and int(before) + 600_000 - 5 <= b.ends_at
            # the clock offset is measured to within the one-way delay of a frame on loopback
            remaining = c.breakout_remaining_ms()
            assert remaining is not None and 590_000 < remaining <= 600_050, remaining
        assert ann.session.breakouts.board_of(ann.session.place) == "br1-1"
        moved_students = [c for c in students if c.session.views > 0]
        assert moved_students, "no student was sent a view frame for its move"
        for c in moved_students:
            assert c.session.room["breakouts"]["members"][c.session.identity] == c.session.place

        # the timer: shortened, on the server's clock
        await teacher.ping()
        await teacher.set_breakout_timer(120)
        await ann.wait_until(lambda: (ann.breakout_remaining_ms() or 1e9) <= 120_050)
        remaining = ann.breakout_remaining_ms()
        assert remaining is not None and 110_000 < remaining <= 120_050

        # a move: the student's place, view and last_id follow
        target = "Blue" if ann.session.place == "Red team" else "Red team"
        views = ann.session.views
        ack = await teacher.move_to_breakout("ann", target)
        await ann.wait_for_place(target, timeout=5)
        await ann.wait_until(lambda: ann.session.views > views, timeout=5)
        assert ann.session.last_id >= ack["ids"][0]
        assert ann.session.room["breakouts"]["members"]["ann"] == target

        # a mass move: one event, each student's place follows
        ack = await teacher.assign_breakouts({"ben": None, "dan": target})
        await ben.wait_for_place(None, timeout=5)
        await dan.wait_for_place(target, timeout=5)
        assert len(ack["ids"]) == 1
        await teacher.assign_breakouts({"ben": places["ben"]})
        await ben.wait_for_place(places["ben"], timeout=5)

        # chat stays in its room; a broadcast reaches every room
        await ann.chat(f"ann in {target}")
        await teacher.broadcast("two minutes left")
        await teacher.chat("to the red team", room="Red team")
        last = (await teacher.chat("main room only"))["ids"][0]
        for c in [teacher, *students]:
            await c.wait_until(
                lambda c=c: any(t == "two minutes left" for _, t in chat_rooms(c)), timeout=5
            )
        await teacher.wait_until(lambda: teacher.session.last_id >= last)
        for c in students:
            lines = chat_rooms(c)
            assert (None, "two minutes left") in lines
            assert all(room in (None, c.session.place) for room, _ in lines), lines
            assert (None, "main room only") not in lines  # every student is in a breakout
            assert ((target, f"ann in {target}") in lines) == (c.session.place == target)
        assert (None, "main room only") in chat_rooms(teacher)

        # help
        await ben.ask_for_help()
        await teacher.wait_until(
            lambda: [h[0] for h in teacher.session.breakouts.help] == ["ben"], timeout=5
        )
        await ben.wait_until(lambda: ben.session.breakouts.help == [("ben", ben.session.place)])
        await teacher.clear_help("ben")
        await ben.wait_until(lambda: ben.session.breakouts.help == [], timeout=5)
        await ben.ask_for_help()
        await teacher.wait_until(lambda: len(teacher.session.breakouts.help) == 1, timeout=5)
        await ben.clear_help()  # withdrawn by the student
        await teacher.wait_until(lambda: teacher.session.breakouts.help == [], timeout=5)

        # a visit: staff show in the room's roster of members
        await teacher.visit_breakout("Blue")
        await teacher.wait_for_place("Blue", timeout=5)
        await ann.wait_until(lambda: ann.session.breakouts.members.get("t") == "Blue", timeout=5)
        await teacher.visit_breakout(None)
        await teacher.wait_for_place(None, timeout=5)

        # close: everyone back; the boards go to the gallery, shared on request
        await teacher.close_breakouts()
        for c in [teacher, *students]:
            await c.wait_for_place(None, timeout=5)
            await c.wait_until(lambda c=c: not c.session.breakouts.open, timeout=5)
        gallery = [(1, "Red team", "br1-1"), (1, "Blue", "br1-2")]
        assert teacher.session.breakouts.gallery == gallery
        assert dan.session.breakouts.gallery == []
        await teacher.share_breakout_boards(True)
        await dan.wait_until(lambda: dan.session.breakouts.gallery == gallery, timeout=5)
        assert dan.session.breakouts.gallery_shared
    finally:
        await close_all([teacher, *students])


async def test_students_choose_their_room_up_to_the_cap(server: LiveclassServer) -> None:
    teacher = client(server, "t", "teacher")
    ann, ben, cat = (client(server, name) for name in ("ann", "ben", "cat"))
    await connect_all([teacher, ann, ben, cat])
    try:
        with pytest.raises(CommandFailed) as refused:
            await ann.choose_breakout("Red")
        assert refused.value.code == "not_allowed"  # none open, so self-select is off
        await teacher.open_breakouts(["Red", "Blue"], self_select=True, cap=1)
        await ann.wait_until(lambda: ann.session.breakouts.self_select, timeout=5)
        assert ann.session.breakouts.cap == 1
        await ann.choose_breakout("Red")
        await ann.wait_for_place("Red", timeout=5)
        with pytest.raises(CommandFailed) as refused:
            await ben.choose_breakout("Red")
        assert refused.value.code == "breakout_full"
        assert ben.session.place is None
        await ben.choose_breakout("Blue")
        await ben.wait_for_place("Blue", timeout=5)
        with pytest.raises(CommandFailed) as refused:
            await teacher.choose_breakout("Blue")  # staff move themselves with visit
        assert refused.value.code == "not_allowed"
        await ann.choose_breakout(None)  # back to the main room
        await ann.wait_for_place(None, timeout=5)
    finally:
        await close_all([teacher, ann, ben, cat])


async def test_bad_breakout_input_reaches_the_caller_as_its_documented_error(
    server: LiveclassServer,
) -> None:
    teacher, ann = client(server, "t", "teacher"), client(server, "ann")
    await connect_all([teacher, ann])

    async def code(call: object) -> tuple[str, str | None]:
        with pytest.raises(CommandFailed) as refused:
            await call  # type: ignore[misc]
        return refused.value.code, refused.value.field

    try:
        assert (await code(ann.open_breakouts(["Red"])))[0] == "not_allowed"
        assert await code(teacher.open_breakouts(["Red"], duration_s=86_401)) == (
            "bad_field",
            "duration_s",
        )
        assert await code(teacher.open_breakouts(["Red"], duration_s=-1)) == (
            "bad_field",
            "duration_s",
        )
        assert await code(teacher.open_breakouts([f"r{i}" for i in range(51)])) == (
            "bad_field",
            "rooms",
        )
        assert (await code(teacher.open_breakouts(["Red"], members={"zed": "Red"})))[0] == (
            "no_such_participant"
        )
        assert (await code(teacher.open_breakouts(["Red"], groups="never saved")))[0] == (
            "bad_field"
        )
        assert (await code(teacher.set_breakout_timer(60)))[0] == "no_such_breakout"
        assert (await code(teacher.broadcast("nobody to hear")))[0] == "no_such_breakout"
        await teacher.open_breakouts(["Red"])
        assert (await code(ann.move_to_breakout("ann", "Red")))[0] == "not_allowed"
        assert (await code(ann.set_breakout_timer(60)))[0] == "not_allowed"
        assert (await code(ann.ask_for_help()))[0] == "not_allowed"  # in the main room
        assert (await code(ann.choose_breakout("Red")))[0] == "not_allowed"  # self-select off
        assert (await code(ann.chat("sneaky", room="Red")))[0] == "not_allowed"
        assert await code(teacher.set_breakout_timer(86_401)) == ("bad_field", "remaining_s")
        assert (await code(teacher.assign_breakouts({"zed": "Red"})))[0] == "no_such_participant"
        assert ann.session.place is None  # nothing changed
    finally:
        await close_all([teacher, ann])


async def test_saved_groups_are_listed_reopened_and_deleted(server: LiveclassServer) -> None:
    teacher = client(server, "t", "teacher")
    ann, ben = client(server, "ann"), client(server, "ben")
    await connect_all([teacher, ann, ben])
    try:
        await teacher.save_breakout_groups(
            "pairs", ["One", "Two"], {"ann": "One", "ben": "Two", "gone": "One"}
        )
        groups = await teacher.list_breakout_groups()
        assert [(g["name"], g["rooms"]) for g in groups] == [("pairs", ["One", "Two"])]
        await teacher.open_breakouts(groups="pairs")
        await ann.wait_for_place("One", timeout=5)
        await ben.wait_for_place("Two", timeout=5)
        assert "gone" not in teacher.session.breakouts.members  # not in this session
        await teacher.close_breakouts()
        await teacher.delete_breakout_groups("pairs")
        assert await teacher.list_breakout_groups() == []
        with pytest.raises(CommandFailed):
            await ann.list_breakout_groups()  # staff only
    finally:
        await close_all([teacher, ann, ben])


async def test_a_student_who_was_away_while_the_round_closed_resumes_into_the_main_room(
    server: LiveclassServer,
) -> None:
    teacher, ann = client(server, "t", "teacher"), client(server, "ann")
    await connect_all([teacher, ann])
    try:
        await teacher.open_breakouts(["Red"], members={"ann": "Red"})
        await ann.wait_for_place("Red", timeout=5)
        welcomes = ann.session.welcomes
        ann.auto_reconnect = False
        await ann.drop()
        await ann.wait_until(lambda: not ann.connected, timeout=5)
        await teacher.close_breakouts()
        ann.auto_reconnect = True
        await ann.connect()
        assert ann.session.welcomes == welcomes + 1  # a fresh view, not a resume
        assert ann.session.place is None and not ann.session.breakouts.open
    finally:
        await close_all([teacher, ann])
