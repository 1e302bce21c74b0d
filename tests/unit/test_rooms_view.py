"""The RoomView snapshot: what each participant may see."""

from typing import Any

from rooms import (
    ChatMessageEvent,
    ChatMute,
    ChatSend,
    HandRaise,
    PollAnswer,
    PollClose,
    PollOpen,
    QuestionAnswer,
    QuestionAsk,
    QuestionDismiss,
    QuestionPin,
    QuestionUpvote,
    Record,
    Role,
    RoomLock,
    SessionEnd,
    chat_entry,
    ordered_questions,
    room_view,
)
from tests.unit.test_rooms_fold import ASSISTANT, OTHER, STUDENT, TEACHER, classroom

ROOM_VIEW_KEYS = [
    "room_id",
    "class_name",
    "locked",
    "waiting_room",
    "waiting",
    "ended",
    "chat_muted_all",
    "chat_muted",
    "hands",
    "chat",
    "questions",
    "polls",
    "locked_boards",
    "media",
    "stage",
    "breakouts",
]


def texts(view: dict[str, Any]) -> list[str]:
    return [message["text"] for message in view["chat"]]


def test_view_of_a_new_room() -> None:
    room = classroom()
    view = room_view(room.state, STUDENT)
    assert list(view) == ROOM_VIEW_KEYS
    assert view == {
        "room_id": "room-1",
        "class_name": None,
        "locked": False,
        "waiting_room": False,
        "waiting": [],
        "ended": None,
        "chat_muted_all": False,
        "chat_muted": [],
        "hands": [],
        "chat": [],
        "questions": [],
        "polls": [],
        "locked_boards": [],
        "media": {
            "mode": "discussion",
            "muted": [],
            "muted_all": [],
            "permitted": [],
            "spotlight": None,
        },
        "stage": "board",
        "breakouts": {
            "round": 0,
            "rooms": [],
            "boards": [],
            "members": {},
            "ends_at": None,
            "warn_s": 60,
            "self_select": False,
            "cap": None,
            "help": [],
            "gallery": [],
            "gallery_shared": False,
        },
    }


def test_view_shows_lock_mutes_hands_and_end() -> None:
    room = classroom()
    room.do(OTHER, HandRaise())
    room.do(STUDENT, HandRaise())
    room.do(TEACHER, ChatMute(True, "s2"))
    room.do(TEACHER, ChatMute(True, "s1"))
    room.do(TEACHER, ChatMute(True))
    room.do(TEACHER, RoomLock(True))
    room.do(TEACHER, SessionEnd("done"))
    view = room_view(room.state, STUDENT)
    assert view["locked"] is True
    assert view["ended"] == {"reason": "done", "by": "t1"}
    assert view["chat_muted_all"] is True
    assert view["chat_muted"] == ["s1", "s2"]
    assert view["hands"] == [
        {"identity": "s2", "name": "Sue", "room": None},
        {"identity": "s1", "name": "Sam", "room": None},
    ]


def test_chat_entry_is_the_protocol_chat_message() -> None:
    record = Record(5, 1234, ChatMessageEvent("s1", "Sam", Role.STUDENT, "hi", "s1"))
    assert chat_entry(record) == {
        "id": 5,
        "ts": 1234,
        "from": "s1",
        "name": "Sam",
        "role": "student",
        "text": "hi",
        "thread": "s1",
        "room": None,
        "broadcast": False,
    }


def test_student_sees_room_chat_and_only_their_own_thread() -> None:
    room = classroom()
    room.do(STUDENT, ChatSend("hello all"))
    room.do(STUDENT, ChatSend("help me", to="staff"))
    room.do(OTHER, ChatSend("sue's secret", to="staff"))
    room.do(TEACHER, ChatSend("for sam", to="s1"))
    room.do(ASSISTANT, ChatSend("for sue", to="s2"))
    assert texts(room_view(room.state, STUDENT)) == ["hello all", "help me", "for sam"]
    assert texts(room_view(room.state, OTHER)) == ["hello all", "sue's secret", "for sue"]


def test_staff_see_every_thread_in_log_order() -> None:
    room = classroom()
    room.do(STUDENT, ChatSend("hello all"))
    room.do(STUDENT, ChatSend("help me", to="staff"))
    room.do(OTHER, ChatSend("sue's secret", to="staff"))
    room.do(TEACHER, ChatSend("for sam", to="s1"))
    expected = ["hello all", "help me", "sue's secret", "for sam"]
    assert texts(room_view(room.state, TEACHER)) == expected
    assert texts(room_view(room.state, ASSISTANT)) == expected
    ids = [message["id"] for message in room_view(room.state, TEACHER)["chat"]]
    assert ids == sorted(ids)


def test_view_holds_the_last_200_messages_the_viewer_may_see() -> None:
    room = classroom()
    for n in range(150):
        room.do(STUDENT, ChatSend(f"room {n}"))
        room.do(OTHER, ChatSend(f"private {n}", to="staff"))
    student_view = texts(room_view(room.state, STUDENT))
    assert len(student_view) == 150 and student_view[-1] == "room 149"
    staff_view = texts(room_view(room.state, TEACHER))
    assert len(staff_view) == 200
    assert staff_view[0] == "room 50" and staff_view[-1] == "private 149"
    assert len(room_view(room.state, OTHER)["chat"]) == 200


def test_questions_are_ordered_pinned_open_votes_then_age() -> None:
    room = classroom()
    texts = ["old", "popular", "answered", "pinned", "new", "dismissed"]
    for asker, text in zip([STUDENT, OTHER] * 3, texts, strict=True):
        room.do(asker, QuestionAsk(text))
    room.do(STUDENT, QuestionUpvote(2))
    room.do(TEACHER, QuestionUpvote(2))
    room.do(STUDENT, QuestionUpvote(3))
    room.do(TEACHER, QuestionUpvote(3))
    room.do(TEACHER, QuestionAnswer(3))
    room.do(TEACHER, QuestionPin(4, True))
    room.do(TEACHER, QuestionDismiss(6))
    order = [q.text for q in ordered_questions(room.state)]
    assert order == ["pinned", "popular", "old", "new", "answered"]
    assert [q["text"] for q in room_view(room.state, OTHER)["questions"]] == order


def test_pinned_answered_question_still_comes_first() -> None:
    room = classroom()
    room.do(STUDENT, QuestionAsk("a"))
    room.do(STUDENT, QuestionAsk("b"))
    room.do(TEACHER, QuestionAnswer(2))
    room.do(TEACHER, QuestionPin(2, True))
    assert [q.text for q in ordered_questions(room.state)] == ["b", "a"]


def test_question_entry_says_whether_the_viewer_voted() -> None:
    room = classroom()
    room.do(STUDENT, QuestionAsk("why?"))
    room.do(OTHER, QuestionUpvote(1))
    [for_sue] = room_view(room.state, OTHER)["questions"]
    [for_sam] = room_view(room.state, STUDENT)["questions"]
    assert for_sue == {
        "question_id": 1,
        "author": "s1",
        "name": "Sam",
        "text": "why?",
        "ts": room.state.questions[1].ts,
        "votes": 1,
        "voted": True,
        "answered": False,
        "pinned": False,
        "room": None,
    }
    assert for_sam["voted"] is False and for_sam["votes"] == 1


def test_student_sees_no_tally_while_the_poll_is_open_but_staff_do() -> None:
    room = classroom()
    room.do(TEACHER, PollOpen("pick", ("a", "b"), False))
    room.do(STUDENT, PollAnswer(1, (1,)))
    [for_sam] = room_view(room.state, STUDENT)["polls"]
    assert for_sam == {
        "poll_id": 1,
        "question": "pick",
        "options": ["a", "b"],
        "multiple": False,
        "open": True,
        "mine": [1],
        "tally": None,
        "voters": None,
        "answers": None,
    }
    [for_sue] = room_view(room.state, OTHER)["polls"]
    assert for_sue["mine"] == [] and for_sue["tally"] is None and for_sue["answers"] is None
    [for_staff] = room_view(room.state, ASSISTANT)["polls"]
    assert for_staff["tally"] == [0, 1] and for_staff["voters"] == 1 and for_staff["mine"] == []
    assert for_staff["answers"] == {STUDENT.identity: [1]}


def test_everyone_sees_the_tally_of_a_closed_poll() -> None:
    room = classroom()
    room.do(TEACHER, PollOpen("pick", ("a", "b"), True))
    room.do(STUDENT, PollAnswer(1, (0, 1)))
    room.do(OTHER, PollAnswer(1, (1,)))
    room.do(TEACHER, PollClose(1))
    for viewer in (STUDENT, OTHER, TEACHER):
        [poll] = room_view(room.state, viewer)["polls"]
        assert poll["open"] is False
        assert poll["tally"] == [1, 2] and poll["voters"] == 2
    assert room_view(room.state, STUDENT)["polls"][0]["mine"] == [0, 1]


def test_polls_are_listed_oldest_first() -> None:
    room = classroom()
    for question in ["first", "second", "third"]:
        room.do(TEACHER, PollOpen(question, ("a", "b"), False))
    room.do(TEACHER, PollClose(2))
    polls = room_view(room.state, STUDENT)["polls"]
    assert [p["question"] for p in polls] == ["first", "second", "third"]
