"""chat.send and chat.mute: room-wide chat, private threads with the staff, muting."""

import pytest

from rooms import (
    BadField,
    ChatMessageEvent,
    ChatMute,
    ChatMuted,
    ChatMutedEvent,
    ChatSend,
    NoSuchParticipant,
    NotAllowed,
    ParticipantRemove,
    Role,
)
from tests.unit.test_rooms_fold import ASSISTANT, OTHER, STUDENT, TEACHER, classroom


def test_student_chats_to_the_room() -> None:
    room = classroom()
    assert room.do(STUDENT, ChatSend("hello")) == [
        ChatMessageEvent("s1", "Sam", Role.STUDENT, "hello", None)
    ]


def test_student_writes_privately_to_the_staff_in_their_own_thread() -> None:
    room = classroom()
    assert room.do(STUDENT, ChatSend("help", to="staff")) == [
        ChatMessageEvent("s1", "Sam", Role.STUDENT, "help", "s1")
    ]


def test_student_cannot_write_to_another_student() -> None:
    room = classroom()
    with pytest.raises(NotAllowed) as refused:
        room.do(STUDENT, ChatSend("psst", to="s2"))
    assert refused.value.field == "to"


def test_staff_write_privately_to_a_student() -> None:
    room = classroom()
    assert room.do(ASSISTANT, ChatSend("see me", to="s2")) == [
        ChatMessageEvent("a1", "Ari", Role.ASSISTANT, "see me", "s2")
    ]


def test_staff_private_message_to_unknown_identity_is_no_such_participant() -> None:
    room = classroom()
    with pytest.raises(NoSuchParticipant) as refused:
        room.do(TEACHER, ChatSend("hi", to="ghost"))
    assert refused.value.field == "to"


def test_staff_cannot_open_a_thread_with_the_staff() -> None:
    room = classroom()
    with pytest.raises(NoSuchParticipant):
        room.do(TEACHER, ChatSend("hi", to="staff"))
    with pytest.raises(NotAllowed):
        room.do(TEACHER, ChatSend("hi", to="a1"))


def test_staff_cannot_write_to_a_removed_student() -> None:
    room = classroom()
    room.do(TEACHER, ParticipantRemove("s2"))
    with pytest.raises(NoSuchParticipant):
        room.do(TEACHER, ChatSend("bye", to="s2"))


@pytest.mark.parametrize("text", ["", "   ", "x" * 2001])
def test_chat_text_out_of_range_is_bad_field(text: str) -> None:
    room = classroom()
    with pytest.raises(BadField) as refused:
        room.do(STUDENT, ChatSend(text))
    assert refused.value.field == "text"


@pytest.mark.parametrize("text", ["x", "x" * 2000, "é" * 2000])
def test_chat_text_of_1_to_2000_characters_is_accepted(text: str) -> None:
    room = classroom()
    assert len(room.do(STUDENT, ChatSend(text))) == 1


def test_muted_student_cannot_chat_to_the_room() -> None:
    room = classroom()
    assert room.do(TEACHER, ChatMute(True, "s1")) == [ChatMutedEvent("s1", True, "t1")]
    with pytest.raises(ChatMuted):
        room.do(STUDENT, ChatSend("hi"))
    room.do(OTHER, ChatSend("I still can"))


@pytest.mark.parametrize("mute", [ChatMute(True, "s1"), ChatMute(True)], ids=["one", "all"])
def test_a_chat_muted_student_can_still_write_to_the_staff_privately(mute: ChatMute) -> None:
    room = classroom()
    room.do(TEACHER, mute)
    (event,) = room.do(STUDENT, ChatSend("I cannot hear you", to="staff"))
    assert isinstance(event, ChatMessageEvent) and event.thread == "s1"
    with pytest.raises(ChatMuted):
        room.do(STUDENT, ChatSend("hello everyone"))


def test_unmuted_student_can_chat_again() -> None:
    room = classroom()
    room.do(TEACHER, ChatMute(True, "s1"))
    assert room.do(ASSISTANT, ChatMute(False, "s1")) == [ChatMutedEvent("s1", False, "a1")]
    assert len(room.do(STUDENT, ChatSend("back"))) == 1


def test_mute_all_mutes_every_student_but_not_the_staff() -> None:
    room = classroom()
    assert room.do(TEACHER, ChatMute(True)) == [ChatMutedEvent(None, True, "t1")]
    for student in (STUDENT, OTHER):
        with pytest.raises(ChatMuted):
            room.do(student, ChatSend("hi"))
    assert len(room.do(TEACHER, ChatSend("quiet please"))) == 1
    assert len(room.do(ASSISTANT, ChatSend("yes", to="s1"))) == 1


def test_unmute_all_lifts_individual_mutes_too() -> None:
    room = classroom()
    room.do(TEACHER, ChatMute(True, "s1"))
    room.do(TEACHER, ChatMute(True))
    assert room.do(TEACHER, ChatMute(False)) == [ChatMutedEvent(None, False, "t1")]
    assert not room.state.chat_muted_all and room.state.chat_muted == set()
    assert len(room.do(STUDENT, ChatSend("free"))) == 1


def test_mute_that_changes_nothing_gives_no_events() -> None:
    room = classroom()
    assert room.do(TEACHER, ChatMute(False, "s1")) == []
    assert room.do(TEACHER, ChatMute(False)) == []
    room.do(TEACHER, ChatMute(True, "s1"))
    assert room.do(TEACHER, ChatMute(True, "s1")) == []
    room.do(TEACHER, ChatMute(True))
    assert room.do(ASSISTANT, ChatMute(True)) == []


def test_staff_are_never_muted() -> None:
    room = classroom()
    with pytest.raises(NotAllowed) as refused:
        room.do(TEACHER, ChatMute(True, "a1"))
    assert refused.value.field == "identity"


def test_muting_an_unknown_identity_is_no_such_participant() -> None:
    room = classroom()
    with pytest.raises(NoSuchParticipant):
        room.do(TEACHER, ChatMute(True, "ghost"))


def test_student_cannot_mute() -> None:
    room = classroom()
    with pytest.raises(NotAllowed):
        room.do(STUDENT, ChatMute(True, "s2"))
