"""The room's bounds (rooms/bounds.py, docs/protocol.md "Bounds"): whatever participants send, the
state and the ``RoomView`` stay small; open questions and polls are never pushed out."""

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rooms import (
    BoardLock,
    ChatSend,
    Command,
    LimitReached,
    Participant,
    PollClose,
    PollOpen,
    QuestionAnswer,
    QuestionAsk,
    QuestionDismiss,
    QuestionUpvote,
    Role,
    RoomError,
    room_view,
)
from rooms.bounds import (
    BOARDS_MAX,
    CHAT_VIEW_BYTES_MAX,
    OPEN_QUESTIONS_PER_AUTHOR,
    POLLS_MAX,
    QUESTIONS_BYTES_MAX,
    QUESTIONS_MAX,
)
from rooms.snapshot import state_from_data, state_to_data
from tests.unit.test_rooms_fold import OTHER, STUDENT, TEACHER, Classroom, classroom

WELCOME_MAX = 256 * 1024
EMOJI = "\U0001f600"  # 4 bytes in UTF-8: the largest text per character


def students(n: int) -> list[Participant]:
    return [Participant(f"s{i:04d}", f"Student {i}", Role.STUDENT) for i in range(n)]


def view_bytes(room: Classroom, viewer: Participant) -> int:
    return len(msgpack.packb(room_view(room.state, viewer), use_bin_type=True))


# Questions


def test_a_dismissed_question_leaves_the_state_and_the_snapshot() -> None:
    room = classroom()
    room.do(STUDENT, QuestionAsk("why?"))
    room.do(TEACHER, QuestionDismiss(1))
    assert room.state.questions == {}
    assert state_to_data(room.state)["questions"] == []
    assert room.do(STUDENT, QuestionAsk("and now?"))[0].question_id == 2


def test_a_dismissed_question_in_an_older_snapshot_is_dropped_when_read() -> None:
    room = classroom()
    room.do(STUDENT, QuestionAsk("kept"))
    room.do(STUDENT, QuestionAsk("dismissed"))
    data = state_to_data(room.state)
    data["questions"][1][7] = True  # as a snapshot written before dismissed questions left
    assert [q.text for q in state_from_data(data).questions.values()] == ["kept"]


def test_a_participant_has_at_most_five_unanswered_questions() -> None:
    room = classroom()
    for n in range(OPEN_QUESTIONS_PER_AUTHOR):
        room.do(STUDENT, QuestionAsk(f"q{n}"))
    with pytest.raises(LimitReached) as refused:
        room.do(STUDENT, QuestionAsk("one more"))
    assert refused.value.code == "limit_reached"
    assert room.do(OTHER, QuestionAsk("someone else asks"))
    room.do(TEACHER, QuestionAnswer(1))
    assert room.do(STUDENT, QuestionAsk("after an answer"))


def test_a_full_qa_pushes_out_the_oldest_answered_questions_and_never_an_open_one() -> None:
    askers = students(QUESTIONS_MAX // OPEN_QUESTIONS_PER_AUTHOR + 1)
    room = classroom(TEACHER, *askers)
    for n in range(QUESTIONS_MAX):
        room.do(askers[n // OPEN_QUESTIONS_PER_AUTHOR], QuestionAsk("a short question"))
    assert len(room.state.questions) == QUESTIONS_MAX
    with pytest.raises(LimitReached):
        room.do(askers[-1], QuestionAsk("the Q&A is full of open questions"))
    room.do(TEACHER, QuestionAnswer(7))
    room.do(TEACHER, QuestionAnswer(3))
    room.do(askers[-1], QuestionAsk("fits now"))
    assert 3 not in room.state.questions and 7 in room.state.questions
    assert len(room.state.questions) == QUESTIONS_MAX


def test_long_questions_fill_the_qa_by_bytes_before_its_count() -> None:
    askers = students(200)
    room = classroom(TEACHER, *askers)
    refused = 0
    for asker in askers:
        try:
            room.do(asker, QuestionAsk(EMOJI * 500))
        except LimitReached:
            refused += 1
    kept = room.state.questions.values()
    assert refused and len(kept) < QUESTIONS_MAX
    assert sum(q.size for q in kept) <= QUESTIONS_BYTES_MAX


# Polls


def poll(n: int) -> PollOpen:
    return PollOpen(f"poll {n}?", ("yes", "no"), False)


def test_a_new_poll_pushes_out_the_oldest_closed_one() -> None:
    room = classroom()
    for n in range(1, POLLS_MAX + 1):
        room.do(TEACHER, poll(n))
        room.do(TEACHER, PollClose(n))
    room.do(TEACHER, poll(POLLS_MAX + 1))
    assert len(room.state.polls) == POLLS_MAX
    assert min(room.state.polls) == 2


def test_a_new_poll_is_refused_when_every_kept_poll_is_open() -> None:
    room = classroom()
    for n in range(1, POLLS_MAX + 1):
        room.do(TEACHER, poll(n))
    with pytest.raises(LimitReached):
        room.do(TEACHER, poll(0))
    room.do(TEACHER, PollClose(9))
    room.do(TEACHER, poll(0))
    assert 9 not in room.state.polls and len(room.state.polls) == POLLS_MAX


# Whiteboards and chat


def test_a_room_knows_a_bounded_number_of_whiteboards() -> None:
    room = classroom()
    for n in range(BOARDS_MAX):
        room.do(TEACHER, BoardLock(f"b{n}", True))
    with pytest.raises(LimitReached) as refused:
        room.do(TEACHER, BoardLock("one-more", True))
    assert refused.value.field == "board"
    assert room.do(TEACHER, BoardLock("b0", False))  # a known board is fine


def test_the_view_carries_only_the_newest_chat_that_fits_its_bytes() -> None:
    room = classroom()
    for n in range(200):
        room.do(STUDENT, ChatSend(f"{n:04d}" + EMOJI * 1996))
    chat = room_view(room.state, TEACHER)["chat"]
    assert 0 < len(chat) < 200
    assert chat[-1]["text"].startswith("0199")
    assert sum(len(m["text"].encode()) for m in chat) <= CHAT_VIEW_BYTES_MAX


# The whole welcome


def test_the_largest_texts_everywhere_keep_the_view_under_256_kib() -> None:
    askers = students(120)
    room = classroom(TEACHER, *askers)
    for n, asker in enumerate(askers):
        for text in (EMOJI * 500,) * OPEN_QUESTIONS_PER_AUTHOR:
            try:
                room.do(asker, QuestionAsk(text))
            except LimitReached:
                pass
        room.do(asker, ChatSend(EMOJI * 2000))
        room.do(asker, ChatSend(EMOJI * 2000, "staff"))
        room.do(TEACHER, ChatSend(EMOJI * 2000, asker.identity))
        try:
            room.do(TEACHER, PollOpen(EMOJI * 300, (EMOJI * 100,) * 10, True))
        except LimitReached:
            room.do(TEACHER, PollClose(max(p for p, v in room.state.polls.items() if v.open)))
        room.do(TEACHER, BoardLock(f"board-{n:03d}-" + "x" * 54, True))
    for viewer in (TEACHER, askers[0]):
        assert view_bytes(room, viewer) < WELCOME_MAX


COMMANDS = st.one_of(
    st.builds(QuestionAsk, st.sampled_from(["?", EMOJI * 500, "x" * 500])),
    st.builds(QuestionUpvote, st.integers(1, 40)),
    st.builds(QuestionAnswer, st.integers(1, 40)),
    st.builds(QuestionDismiss, st.integers(1, 40)),
    st.builds(ChatSend, st.sampled_from([EMOJI * 2000, "hi"]), st.sampled_from([None, "staff"])),
    st.builds(
        PollOpen,
        st.sampled_from([EMOJI * 300, "?"]),
        st.sampled_from([(EMOJI * 100,) * 10, ("a", "b")]),
        st.booleans(),
    ),
    st.builds(PollClose, st.integers(1, 60)),
    st.builds(BoardLock, st.from_regex(r"[a-z]{1,8}", fullmatch=True), st.booleans()),
)


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(st.lists(st.tuples(st.sampled_from([TEACHER, STUDENT, OTHER]), COMMANDS), max_size=300))
def test_no_command_sequence_grows_the_view_past_256_kib(
    steps: list[tuple[Participant, Command]],
) -> None:
    room = classroom()
    for actor, command in steps:
        try:
            room.do(actor, command)
        except RoomError:
            pass
    assert len(room.state.questions) <= QUESTIONS_MAX and len(room.state.polls) <= POLLS_MAX
    for viewer in (TEACHER, STUDENT):
        assert view_bytes(room, viewer) < WELCOME_MAX
    # The fold of the log is the state the commands built, bounds and all.
    assert state_to_data(room.replay()) == state_to_data(room.state)
