"""Moderation over a real server: locking the room, muting chat, ending the session."""

from __future__ import annotations

import pytest

from clients import ClassroomClient, CommandFailed, Refused
from tests.integration.classroom import client, close_all, connect_all, wait_all
from tests.server import LiveclassServer


async def test_a_locked_room_refuses_newcomers_but_lets_its_students_back(
    server: LiveclassServer,
) -> None:
    teacher, alice = client(server, "t", "teacher"), client(server, "alice", reconnect=False)
    await connect_all([teacher, alice])
    try:
        await teacher.lock_room()
        newcomer = client(server, "mallory", reconnect=False)
        with pytest.raises(Refused) as refused:
            await newcomer.connect()
        assert refused.value.code == "room_locked"
        await newcomer.wait_until(lambda: newcomer.closed_with is not None, 5)
        assert newcomer.closed_with is not None and newcomer.closed_with[0] == 4423
        await alice.close()
        back = client(server, "alice", reconnect=False)
        assert (await back.connect())["t"] == "welcome"
        assert back.session.room["locked"] is True
        await back.close()
    finally:
        await close_all([teacher, alice])


async def test_muted_students_cannot_chat_until_unmuted(server: LiveclassServer) -> None:
    teacher, alice, bob = (
        client(server, "t", "teacher"),
        client(server, "alice"),
        client(server, "bob"),
    )
    await connect_all([teacher, alice, bob])
    try:
        await teacher.mute_chat("alice")
        with pytest.raises(CommandFailed) as muted:
            await alice.chat("hello?")
        assert muted.value.code == "chat_muted"
        await bob.chat("bob can still talk")
        await teacher.mute_chat(None)  # every student
        with pytest.raises(CommandFailed):
            await bob.chat("not now")
        await teacher.chat("staff are never muted")
        await teacher.mute_chat(None, muted=False)  # lifts the individual mute too
        last = (await alice.chat("back again"))["ids"][0]
        await wait_all([teacher, alice, bob], last)
        texts = [e.data["text"] for e in bob.session.events if e.type == "chat.message"]
        assert texts == ["bob can still talk", "staff are never muted", "back again"]
    finally:
        await close_all([teacher, alice, bob])


async def test_a_chat_muted_student_can_still_write_to_the_staff_privately(
    server: LiveclassServer,
) -> None:
    teacher, alice, bob = (
        client(server, "t", "teacher"),
        client(server, "alice"),
        client(server, "bob"),
    )
    await connect_all([teacher, alice, bob])
    try:
        await teacher.mute_chat("alice")
        await teacher.mute_chat(None)  # and every student
        with pytest.raises(CommandFailed) as muted:
            await alice.chat("hello everyone")
        assert muted.value.code == "chat_muted"
        last = (await alice.chat("I cannot unmute my microphone", to="staff"))["ids"][0]
        private = await teacher.wait_for(lambda e: e.type == "chat.message")
        assert private.id == last and private.data["thread"] == "alice"
        assert private.data["text"] == "I cannot unmute my microphone"
        await wait_all([teacher, bob], last - 1)
        assert not [e for e in bob.session.events if e.type == "chat.message"]
    finally:
        await close_all([teacher, alice, bob])


async def test_ending_the_session_closes_everyone_and_refuses_new_joins(
    server: LiveclassServer,
) -> None:
    teacher = client(server, "t", "teacher", reconnect=False)
    assistant = client(server, "a", "assistant", reconnect=False)
    students = [client(server, f"s{i}") for i in range(3)]
    everyone = [teacher, assistant, *students]
    await connect_all(everyone)
    try:
        with pytest.raises(CommandFailed) as not_teacher:
            await assistant.end_session("assistants cannot")
        assert not_teacher.value.code == "not_allowed"
        await teacher.end_session("see you tomorrow")
        for c in everyone:
            await c.wait_until(lambda c=c: c.closed_with is not None, 5)
            assert c.closed_with is not None and c.closed_with[0] == 4409
            ended = [e for e in c.session.events if e.type == "session.ended"]
            assert ended and ended[0].data["reason"] == "see you tomorrow"
        late = ClassroomClient(server.ws_url, server.token("late"), "class", reconnect=False)
        with pytest.raises(Refused) as refused:
            await late.connect()
        assert refused.value.code == "session_ended"
    finally:
        await close_all(everyone)
