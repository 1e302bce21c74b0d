"""A breakout room is a room for its members: its own chat, Q&A, hands and board; rounds with a
timer, mass moves, self-select, a help queue, broadcasts; closing brings everyone back and keeps
what the rooms made (docs/protocol.md, "Breakout rooms")."""

from typing import Any

import pytest

from rooms import (
    BadField,
    BreakoutAssign,
    BreakoutAssignedEvent,
    BreakoutBroadcast,
    BreakoutChoose,
    BreakoutClose,
    BreakoutClosedEvent,
    BreakoutExpire,
    BreakoutFull,
    BreakoutHelp,
    BreakoutHelpAskedEvent,
    BreakoutHelpClearedEvent,
    BreakoutHelpDone,
    BreakoutMove,
    BreakoutMovedEvent,
    BreakoutOpen,
    BreakoutOpenedEvent,
    BreakoutShareBoards,
    BreakoutTimer,
    BreakoutTimerSetEvent,
    ChatMessageEvent,
    ChatMute,
    ChatMuted,
    ChatSend,
    Command,
    HandCalledEvent,
    HandCallNext,
    HandRaise,
    NoRaisedHands,
    NoSuchBreakout,
    NoSuchParticipant,
    NoSuchQuestion,
    NotAllowed,
    Participant,
    ParticipantRemove,
    QuestionAnswer,
    QuestionAsk,
    QuestionUpvote,
    Role,
    RoomError,
    audience_of,
    room_view,
    router_id,
)
from rooms.state import CHAT_HISTORY
from tests.unit.test_rooms_fold import START_MS, Classroom

TEACHER = Participant("t1", "Tess", Role.TEACHER)
ASSISTANT = Participant("a1", "Ari", Role.ASSISTANT)
STUDENTS = [Participant(f"s{n}", f"Student {n}", Role.STUDENT) for n in range(1, 7)]
S1, S2, S3, S4, S5, S6 = STUDENTS


def class_of(*students: Participant) -> Classroom:
    room = Classroom()
    room.join(TEACHER, ASSISTANT, *(students or STUDENTS))
    return room


def in_breakouts(**members: str) -> Classroom:
    """A class with rooms red and blue open and ``members`` (identity=room) in them."""
    room = class_of()
    room.do(TEACHER, BreakoutOpen(("red", "blue"), members=members or {"s1": "red", "s2": "blue"}))
    return room


def texts(view: dict[str, Any]) -> list[str]:
    return [entry["text"] for entry in view["chat"]]


def refused(room: Classroom, actor: Participant, command: Command) -> RoomError:
    """The error ``command`` gets; the log is unchanged."""
    before = len(room.log)
    with pytest.raises(RoomError) as caught:
        room.do(actor, command)
    assert len(room.log) == before
    return caught.value


# Isolation


def test_a_chat_line_in_the_red_room_reaches_red_and_the_staff_only() -> None:
    room = in_breakouts(s1="red", s2="blue")
    (event,) = room.do(S1, ChatSend("red says hi"))
    assert isinstance(event, ChatMessageEvent) and event.room == "red"
    audience = audience_of(event)
    assert audience.admits(S1, place="red") and audience.admits(TEACHER)
    assert not audience.admits(S2, place="blue") and not audience.admits(S3, place=None)
    assert texts(room_view(room.state, S1)) == ["red says hi"]
    assert texts(room_view(room.state, S2)) == []
    assert texts(room_view(room.state, S3)) == []
    assert [(e["text"], e["room"]) for e in room_view(room.state, TEACHER)["chat"]] == [
        ("red says hi", "red")
    ]


def test_the_main_rooms_chat_does_not_reach_students_in_a_breakout() -> None:
    room = in_breakouts(s1="red")
    room.do(TEACHER, ChatSend("main room only"))
    assert texts(room_view(room.state, S3)) == ["main room only"]
    assert texts(room_view(room.state, S1)) == []


def test_a_student_writes_only_in_their_own_room() -> None:
    room = in_breakouts(s1="red")
    error = refused(room, S1, ChatSend("sneaky", room="blue"))
    assert (error.code, error.field) == ("not_allowed", "room")
    assert refused(room, S3, QuestionAsk("sneaky?", room="red")).code == "not_allowed"
    (event,) = room.do(S1, ChatSend("mine", room="red"))
    assert isinstance(event, ChatMessageEvent) and event.room == "red"


def test_staff_post_into_any_open_room_and_their_own_by_default() -> None:
    room = in_breakouts(s1="red")
    (into_blue,) = room.do(TEACHER, ChatSend("blue, 5 minutes", room="blue"))
    assert isinstance(into_blue, ChatMessageEvent) and into_blue.room == "blue"
    room.do(TEACHER, BreakoutMove("t1", "red"))
    (own,) = room.do(TEACHER, ChatSend("visiting red"))
    assert isinstance(own, ChatMessageEvent) and own.room == "red"
    assert texts(room_view(room.state, S1)) == ["visiting red"]
    error = refused(room, TEACHER, ChatSend("x", room="green"))
    assert (error.code, error.field) == ("no_such_breakout", "room")
    assert refused(room, TEACHER, ChatSend("x", to="s1", room="red")).code == "bad_field"


def test_private_threads_follow_their_student_wherever_they_are() -> None:
    room = in_breakouts(s1="red")
    room.do(S1, ChatSend("help", to="staff"))
    room.do(TEACHER, ChatSend("coming", to="s1"))
    assert texts(room_view(room.state, S1)) == ["help", "coming"]
    room.do(TEACHER, BreakoutMove("s1", "blue"))
    assert texts(room_view(room.state, S1)) == ["help", "coming"]


def test_questions_are_asked_seen_and_voted_in_their_room() -> None:
    room = in_breakouts(s1="red", s2="red", s3="blue")
    room.do(S1, QuestionAsk("red question"))
    room.do(S3, QuestionAsk("blue question"))
    room.do(S4, QuestionAsk("main question"))
    by_text = {q.text: q for q in room.state.questions.values()}
    assert [by_text[t].room for t in ("red question", "blue question", "main question")] == [
        "red",
        "blue",
        None,
    ]
    assert [q["text"] for q in room_view(room.state, S2)["questions"]] == ["red question"]
    assert [q["text"] for q in room_view(room.state, S4)["questions"]] == ["main question"]
    staff = room_view(room.state, ASSISTANT)["questions"]
    assert sorted((q["text"], q["room"]) for q in staff) == [
        ("blue question", "blue"),
        ("main question", None),
        ("red question", "red"),
    ]
    red_id = by_text["red question"].question_id
    (vote,) = room.do(S2, QuestionUpvote(red_id))
    assert audience_of(vote).room == "red"
    # Another room's question answers as an unknown one: ids cannot be probed across rooms.
    error = refused(room, S3, QuestionUpvote(red_id))
    assert (error.code, error.field) == ("no_such_question", "question_id")
    assert isinstance(error, NoSuchQuestion)
    room.do(TEACHER, QuestionUpvote(red_id))
    (answered,) = room.do(TEACHER, QuestionAnswer(red_id))
    assert audience_of(answered).room == "red"


def test_hands_belong_to_their_room_and_a_move_lowers_them() -> None:
    room = in_breakouts(s1="red")
    (raised,) = room.do(S1, HandRaise())
    room.do(S3, HandRaise())
    assert audience_of(raised).room == "red"
    assert [h["identity"] for h in room_view(room.state, S1)["hands"]] == ["s1"]
    assert [h["identity"] for h in room_view(room.state, S4)["hands"]] == ["s3"]
    assert room_view(room.state, TEACHER)["hands"] == [
        {"identity": "s1", "name": "Student 1", "room": "red"},
        {"identity": "s3", "name": "Student 3", "room": None},
    ]
    # The teacher in the main room calls the main room's first hand.
    assert room.do(TEACHER, HandCallNext()) == [HandCalledEvent("s3", "Student 3", "t1", None)]
    with pytest.raises(NoRaisedHands):
        room.do(TEACHER, HandCallNext())
    room.do(TEACHER, BreakoutMove("s1", "blue"))
    assert room.state.hands == []


def test_mutes_apply_inside_breakout_rooms() -> None:
    room = in_breakouts(s1="red")
    room.do(TEACHER, ChatMute(True, "s1"))
    with pytest.raises(ChatMuted):
        room.do(S1, ChatSend("hello red"))
    room.do(TEACHER, ChatMute(False, "s1"))
    room.do(TEACHER, ChatMute(True))
    with pytest.raises(ChatMuted):
        room.do(S1, ChatSend("hello red"))


def test_breakout_chat_keeps_the_last_200_per_room() -> None:
    room = in_breakouts(s1="red")
    for n in range(CHAT_HISTORY + 30):
        room.do(S1, ChatSend(f"r{n}"))
    assert len(room.state.breakout_chat["red"]) == CHAT_HISTORY
    assert len(room_view(room.state, S1)["chat"]) == CHAT_HISTORY
    assert room.replay() == room.state


# Opening


def test_opening_records_the_round_boards_timer_and_whole_assignment() -> None:
    room = class_of()
    (event,) = room.do(
        TEACHER,
        BreakoutOpen(
            ("Red team", "Blue team", "Green"),
            members={"s1": "Green"},
            auto={"apart": (("s2", "s3"),), "together": (("s4", "s5"),)},
            duration_s=600,
            warn_s=30,
        ),
    )
    assert isinstance(event, BreakoutOpenedEvent)
    assert event.round == 1 and event.boards == ("br1-1", "br1-2", "br1-3")
    assert set(event.members) == {"s1", "s2", "s3", "s4", "s5", "s6"}
    assert event.members["s1"] == "Green"
    assert event.members["s2"] != event.members["s3"]
    assert event.members["s4"] == event.members["s5"]
    sizes = [list(event.members.values()).count(r) for r in event.rooms]
    assert sorted(sizes) == [2, 2, 2]
    state = room.state
    assert state.breakout_ends_at == room.log[-1].ts + 600_000
    assert state.breakout_warn_s == 30
    assert state.breakout_of == event.members
    # Decided once and recorded: replaying gives the same rooms, and so does deciding again.
    assert room.replay() == state
    again = class_of()
    assert again.do(TEACHER, BreakoutOpen(event.rooms, members={"s1": "Green"},
                                          auto={"apart": (("s2", "s3"),),
                                                "together": (("s4", "s5"),)},
                                          duration_s=600, warn_s=30)) == [event]  # fmt: skip


def test_rounds_count_from_one_and_boards_are_new_each_round() -> None:
    room = class_of()
    room.do(TEACHER, BreakoutOpen(("red",)))
    room.do(TEACHER, BreakoutClose())
    (second,) = room.do(TEACHER, BreakoutOpen(("red", "blue")))
    assert isinstance(second, BreakoutOpenedEvent)
    assert (second.round, second.boards) == (2, ("br2-1", "br2-2"))


@pytest.mark.parametrize(
    ("command", "code", "field"),
    [
        (BreakoutOpen(tuple(f"r{n}" for n in range(51))), "bad_field", "rooms"),
        (BreakoutOpen(("red",), duration_s=-1), "bad_field", "duration_s"),
        (BreakoutOpen(("red",), duration_s=0), "bad_field", "duration_s"),
        (BreakoutOpen(("red",), duration_s=86_401), "bad_field", "duration_s"),
        (BreakoutOpen(("red",), warn_s=3601), "bad_field", "warn_s"),
        (BreakoutOpen(("red",), cap=0), "bad_field", "cap"),
        (BreakoutOpen(("red",), members={"ghost": "red"}), "no_such_participant", "members"),
        (BreakoutOpen(("red",), members={"s1": "blue"}), "no_such_breakout", "members"),
        (BreakoutOpen(("red",), auto={"apart": (("s1", "ghost"),)}), "no_such_participant", "auto"),
        (BreakoutOpen(("red",), auto={"apart": (("s1", "s2"),)}), "bad_field", "auto"),
        (BreakoutOpen(("red",), auto={"apart": (("s1",),)}), "bad_field", "auto"),
        (BreakoutOpen(("red",), auto={"mix": ()}), "bad_field", "auto"),
        (BreakoutOpen(("a", "b"), auto={"together": (("s1", "s2", "s3", "s4"),)}), "bad_field",
         "auto"),
        (BreakoutOpen(groups="monday"), "bad_field", "groups"),
    ],
)  # fmt: skip
def test_bad_openings_are_refused_with_the_field_to_blame(
    command: BreakoutOpen, code: str, field: str
) -> None:
    error = refused(class_of(), TEACHER, command)
    assert (error.code, error.field) == (code, field)


def test_fifty_rooms_open_and_a_timer_of_24_hours_is_allowed() -> None:
    (event,) = class_of().do(
        TEACHER, BreakoutOpen(tuple(f"r{n}" for n in range(50)), duration_s=86_400)
    )
    assert isinstance(event, BreakoutOpenedEvent) and event.duration_s == 86_400


# Moving


def test_a_mass_move_is_one_event_with_only_the_changes() -> None:
    room = in_breakouts(s1="red", s2="blue")
    (event,) = room.do(
        ASSISTANT, BreakoutAssign(members={"s1": "red", "s2": "red", "s3": "blue", "s4": None})
    )
    assert event == BreakoutAssignedEvent({"s2": "red", "s3": "blue"}, "a1")
    assert room.state.breakout_of == {"s1": "red", "s2": "red", "s3": "blue"}
    assert room.do(ASSISTANT, BreakoutAssign(members={"s1": "red"})) == []
    (back,) = room.do(ASSISTANT, BreakoutAssign(members={"s1": None, "s2": None}))
    assert back == BreakoutAssignedEvent({"s1": None, "s2": None}, "a1")


def test_a_mass_move_with_one_bad_entry_changes_nothing() -> None:
    room = in_breakouts(s1="red")
    error = refused(room, TEACHER, BreakoutAssign(members={"s2": "red", "ghost": "blue"}))
    assert (error.code, error.field) == ("no_such_participant", "members")
    error = refused(room, TEACHER, BreakoutAssign(members={"s2": "red", "s3": "green"}))
    assert (error.code, error.field) == ("no_such_breakout", "members")
    error = refused(room, ASSISTANT, BreakoutAssign(members={"s2": "red", "t1": "blue"}))
    assert (error.code, error.field) == ("not_allowed", "members")
    assert room.state.breakout_of == {"s1": "red"}


def test_auto_assign_places_the_students_still_in_the_main_room() -> None:
    room = in_breakouts(s1="red", s2="red")
    (event,) = room.do(TEACHER, BreakoutAssign(auto={}))
    assert isinstance(event, BreakoutAssignedEvent)
    assert set(event.members) == {"s3", "s4", "s5", "s6"}
    sizes = sorted(list(room.state.breakout_of.values()).count(r) for r in ("red", "blue"))
    assert sizes == [3, 3]


def test_a_move_between_running_rooms_and_back_to_the_main_room() -> None:
    room = in_breakouts(s1="red")
    assert room.do(TEACHER, BreakoutMove("s1", "blue")) == [BreakoutMovedEvent("s1", "blue", "t1")]
    assert room.do(TEACHER, BreakoutMove("s1")) == [BreakoutMovedEvent("s1", None, "t1")]


def test_only_the_teacher_moves_the_teacher() -> None:
    room = in_breakouts()
    assert refused(room, ASSISTANT, BreakoutMove("t1", "red")).code == "not_allowed"
    assert refused(room, ASSISTANT, BreakoutAssign(members={"t1": "red"})).code == "not_allowed"
    assert room.do(TEACHER, BreakoutMove("t1", "red")) == [BreakoutMovedEvent("t1", "red", "t1")]
    # An assistant visits a room by moving themself; they show in its roster.
    room.do(ASSISTANT, BreakoutMove("a1", "blue"))
    assert room_view(room.state, S2)["breakouts"]["members"]["a1"] == "blue"


def test_a_removed_participant_leaves_every_room_and_is_never_moved() -> None:
    room = in_breakouts(s1="red")
    room.do(S1, BreakoutHelp())
    room.do(TEACHER, ParticipantRemove("s1"))
    assert "s1" not in room.state.breakout_of and room.state.breakout_help == []
    assert refused(room, TEACHER, BreakoutMove("s1", "red")).code == "no_such_participant"
    assert refused(room, TEACHER, BreakoutAssign(members={"s1": "red"})).code == (
        "no_such_participant"
    )
    (event,) = room.do(TEACHER, BreakoutAssign(auto={}))
    assert isinstance(event, BreakoutAssignedEvent) and "s1" not in event.members


# Self-select


def test_students_choose_their_room_only_when_self_select_is_on() -> None:
    room = in_breakouts(s1="red")
    error = refused(room, S3, BreakoutChoose("red"))
    assert (error.code, error.field) == ("not_allowed", "room")
    room.do(TEACHER, BreakoutClose())
    room.do(TEACHER, BreakoutOpen(("red", "blue"), self_select=True, cap=2))
    assert room.do(S3, BreakoutChoose("red")) == [BreakoutMovedEvent("s3", "red", "s3")]
    assert room.do(S3, BreakoutChoose("red")) == []
    assert room.do(S4, BreakoutChoose("red")) == [BreakoutMovedEvent("s4", "red", "s4")]
    # Staff in a room do not count against the cap.
    room.do(TEACHER, BreakoutMove("t1", "red"))
    error = refused(room, S5, BreakoutChoose("red"))
    assert (error.code, error.field) == ("breakout_full", "room")
    assert isinstance(error, BreakoutFull)
    assert room.do(S3, BreakoutChoose("blue")) == [BreakoutMovedEvent("s3", "blue", "s3")]
    assert room.do(S5, BreakoutChoose("red")) == [BreakoutMovedEvent("s5", "red", "s5")]
    assert room.do(S5, BreakoutChoose(None)) == [BreakoutMovedEvent("s5", None, "s5")]
    assert refused(room, S5, BreakoutChoose("green")).code == "no_such_breakout"
    assert refused(room, ASSISTANT, BreakoutChoose("red")).code == "not_allowed"


# Timer


def test_the_timer_counts_from_the_records_time_and_staff_extend_or_remove_it() -> None:
    room = class_of()
    room.do(TEACHER, BreakoutOpen(("red",), duration_s=300))
    assert room.state.breakout_ends_at == room.log[-1].ts + 300_000
    assert room.do(ASSISTANT, BreakoutTimer(900)) == [BreakoutTimerSetEvent(900, "a1")]
    assert room.state.breakout_ends_at == room.log[-1].ts + 900_000
    assert room_view(room.state, S1)["breakouts"]["ends_at"] == room.log[-1].ts + 900_000
    room.do(TEACHER, BreakoutTimer(None))
    assert room.state.breakout_ends_at is None
    assert room.do(TEACHER, BreakoutTimer(None)) == []


@pytest.mark.parametrize("remaining_s", [-5, 0, 86_401])
def test_a_timer_negative_zero_or_over_24_hours_is_bad_field(remaining_s: int) -> None:
    room = class_of()
    room.do(TEACHER, BreakoutOpen(("red",), duration_s=300))
    error = refused(room, TEACHER, BreakoutTimer(remaining_s))
    assert (error.code, error.field) == ("bad_field", "remaining_s")


def test_a_timer_without_open_rooms_is_no_such_breakout() -> None:
    assert refused(class_of(), TEACHER, BreakoutTimer(60)).code == "no_such_breakout"


def test_the_timer_closes_its_round_once_and_only_while_it_still_ends_then() -> None:
    room = class_of()
    room.do(TEACHER, BreakoutOpen(("red",), members={"s1": "red"}, duration_s=60))
    ends_at = room.state.breakout_ends_at
    assert ends_at is not None
    assert room.do(TEACHER, BreakoutExpire(1, ends_at - 1)) == []  # the timer changed since
    assert room.do(TEACHER, BreakoutExpire(2, ends_at)) == []  # not this round
    assert room.do(TEACHER, BreakoutExpire(1, ends_at)) == [BreakoutClosedEvent(None, 1, "timer")]
    assert room.state.breakout_of == {} and room.state.breakouts == ()
    assert room.do(TEACHER, BreakoutExpire(1, ends_at)) == []  # another node lost the race


def test_an_extended_timer_makes_the_old_expiry_a_no_op() -> None:
    room = class_of()
    room.do(TEACHER, BreakoutOpen(("red",), duration_s=60))
    old = room.state.breakout_ends_at
    assert old is not None
    room.do(TEACHER, BreakoutTimer(600))
    assert room.do(TEACHER, BreakoutExpire(1, old)) == []
    assert room.state.breakouts == ("red",)


# Broadcast and help


def test_a_broadcast_reaches_every_room_once() -> None:
    room = in_breakouts(s1="red", s2="blue")
    room.do(S1, ChatSend("red line"))
    (event,) = room.do(TEACHER, BreakoutBroadcast("two minutes left"))
    assert isinstance(event, ChatMessageEvent) and event.broadcast and event.room is None
    for student, expected in (
        (S1, ["red line", "two minutes left"]),
        (S2, ["two minutes left"]),
        (S3, ["two minutes left"]),
    ):
        assert texts(room_view(room.state, student)) == expected  # fmt: skip
    assert texts(room_view(room.state, TEACHER)) == ["red line", "two minutes left"]
    assert refused(room, S1, BreakoutBroadcast("hi")).code == "not_allowed"
    assert refused(class_of(), TEACHER, BreakoutBroadcast("hi")).code == "no_such_breakout"


def test_the_help_queue() -> None:
    room = in_breakouts(s1="red", s2="blue")
    error = refused(room, S3, BreakoutHelp())
    assert error.code == "not_allowed"  # in the main room one raises a hand
    assert room.do(S2, BreakoutHelp()) == [BreakoutHelpAskedEvent("s2", "blue")]
    assert room.do(S1, BreakoutHelp()) == [BreakoutHelpAskedEvent("s1", "red")]
    assert room.do(S1, BreakoutHelp()) == []
    assert room_view(room.state, TEACHER)["breakouts"]["help"] == [
        {"identity": "s2", "room": "blue"},
        {"identity": "s1", "room": "red"},
    ]
    assert room_view(room.state, S1)["breakouts"]["help"] == [{"identity": "s1", "room": "red"}]
    assert audience_of(BreakoutHelpAskedEvent("s1", "red")).admits(S2, place="red") is False
    assert refused(room, S1, BreakoutHelpDone("s2")).code == "not_allowed"
    assert room.do(S1, BreakoutHelpDone()) == [BreakoutHelpClearedEvent("s1", "s1")]
    assert room.do(ASSISTANT, BreakoutHelpDone("s2")) == [BreakoutHelpClearedEvent("s2", "a1")]
    room.do(S1, BreakoutHelp())
    room.do(TEACHER, BreakoutMove("s1", "blue"))
    assert room.state.breakout_help == []


# Closing


def test_closing_brings_everyone_back_and_keeps_chat_questions_and_boards() -> None:
    room = in_breakouts(s1="red", s2="blue")
    room.do(S1, ChatSend("red line"))
    room.do(S2, QuestionAsk("blue question"))
    room.do(S1, BreakoutHelp())
    room.do(TEACHER, BreakoutClose())
    state = room.state
    assert state.breakout_of == {} and state.breakouts == () and state.breakout_help == []
    assert state.gallery == ((1, "red", "br1-1"), (1, "blue", "br1-2"))
    # Students are back in the main room's conversation; staff keep the rooms' chat and Q&A.
    assert texts(room_view(state, S1)) == []
    assert room_view(state, S2)["questions"] == []
    assert texts(room_view(state, TEACHER)) == ["red line"]
    assert [q["room"] for q in room_view(state, TEACHER)["questions"]] == ["blue"]
    assert room_view(state, S1)["breakouts"]["gallery"] == []
    assert room.replay() == state


def test_only_the_last_closed_rounds_chat_is_kept() -> None:
    room = in_breakouts(s1="red")
    room.do(S1, ChatSend("round one"))
    room.do(TEACHER, BreakoutClose())
    room.do(TEACHER, BreakoutOpen(("green",), members={"s1": "green"}))
    room.do(S1, ChatSend("round two"))
    room.do(TEACHER, BreakoutClose())
    assert set(room.state.breakout_archive) == {"green"}
    assert texts(room_view(room.state, TEACHER)) == ["round two"]


def test_sharing_the_boards_needs_a_closed_round() -> None:
    room = in_breakouts()
    error = refused(room, TEACHER, BreakoutShareBoards(True))
    assert error.code == "no_such_breakout"
    room.do(TEACHER, BreakoutClose())
    assert refused(room, S1, BreakoutShareBoards(True)).code == "not_allowed"
    assert len(room.do(TEACHER, BreakoutShareBoards(True))) == 1
    assert room.do(TEACHER, BreakoutShareBoards(True)) == []


@pytest.mark.parametrize(
    "command",
    [
        BreakoutOpen(("green",)),
        BreakoutAssign(members={"s2": "red"}),
        BreakoutMove("s2", "red"),
        BreakoutTimer(60),
        BreakoutBroadcast("hi"),
        BreakoutHelpDone("s2"),
        BreakoutShareBoards(True),
        BreakoutClose(),
    ],
    ids=lambda c: c.type,
)
def test_a_student_sending_staff_breakout_commands_is_not_allowed(command: Command) -> None:
    room = in_breakouts(s1="red")
    before = room.replay()
    with pytest.raises(NotAllowed):
        room.do(S1, command)
    assert room.state == before


def test_every_bad_breakout_command_changes_nothing() -> None:
    room = in_breakouts(s1="red")
    for command in (
        BreakoutAssign(members={"ghost": "red"}),
        BreakoutMove("s1", "green"),
        BreakoutTimer(-1),
        BreakoutOpen(("x",)),
    ):
        with pytest.raises((BadField, NoSuchBreakout, NoSuchParticipant, RoomError)):
            room.do(TEACHER, command)
    assert room.state.breakout_of == {"s1": "red"} and room.state.last_id == room.log[-1].id
    assert room.log[-1].ts >= START_MS


def test_a_display_name_with_a_slash_is_one_media_room_of_its_own() -> None:
    room = class_of()
    room.do(TEACHER, BreakoutOpen(("a/b", "a"), members={"s1": "a/b", "s2": "a"}))
    assert router_id(room.state, "s1") == "room-1/a%2Fb"
    assert router_id(room.state, "s2") == "room-1/a"
    assert router_id(room.state, "s3") == "room-1"
