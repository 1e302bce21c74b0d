"""The fold: a room's state is the fold of the events decide() and admit() produced.

This module also holds ``Classroom``, the small harness the other ``test_rooms_*`` modules use:
it decides, stamps records with ids and times, and folds them like the server does.
"""

from collections.abc import Iterable
from dataclasses import fields

from hypothesis import given, settings
from hypothesis import strategies as st

from rooms import (
    BreakoutAssign,
    BreakoutBroadcast,
    BreakoutChoose,
    BreakoutClose,
    BreakoutExpire,
    BreakoutHelp,
    BreakoutHelpDone,
    BreakoutMove,
    BreakoutOpen,
    BreakoutShareBoards,
    BreakoutTimer,
    ChatMessageEvent,
    ChatMute,
    ChatSend,
    Command,
    Event,
    HandCallNext,
    HandLower,
    HandLowerAll,
    HandRaise,
    HandRaisedEvent,
    Leave,
    MediaMode,
    MediaMute,
    MediaPermit,
    MediaSpotlight,
    Participant,
    ParticipantRemove,
    PollAnswer,
    PollAnsweredEvent,
    PollClose,
    PollOpen,
    PollOpenedEvent,
    QuestionAnswer,
    QuestionAsk,
    QuestionAskedEvent,
    QuestionDismiss,
    QuestionPin,
    QuestionUnvote,
    QuestionUpvote,
    QuestionUpvotedEvent,
    Record,
    Role,
    RoomError,
    RoomLock,
    RoomState,
    StageSet,
    admit,
    copy_state,
    decide,
    evolve,
    new_room,
)
from rooms.snapshot import state_to_data

TEACHER = Participant("t1", "Tess", Role.TEACHER)
ASSISTANT = Participant("a1", "Ari", Role.ASSISTANT)
STUDENT = Participant("s1", "Sam", Role.STUDENT)
OTHER = Participant("s2", "Sue", Role.STUDENT)
EVERYONE = (TEACHER, ASSISTANT, STUDENT, OTHER)
START_MS = 1_700_000_000_000


class Classroom:
    """A room driven like the server drives it: decide, append to the log, fold."""

    def __init__(self, room_id: str = "room-1") -> None:
        self.state = new_room(room_id)
        self.log: list[Record] = []

    def append(self, events: Iterable[Event]) -> list[Record]:
        records = []
        for event in events:
            record = Record(len(self.log) + 1, START_MS + 1000 * len(self.log), event)
            evolve(self.state, record)
            self.log.append(record)
            records.append(record)
        return records

    def join(self, *participants: Participant) -> list[Event]:
        events: list[Event] = []
        for participant in participants:
            joined = admit(self.state, participant)
            self.append(joined)
            events.extend(joined)
        return events

    def do(self, actor: Participant, command: Command) -> list[Event]:
        events = decide(self.state, actor, command)
        self.append(events)
        return events

    def replay(self) -> RoomState:
        state = new_room(self.state.room_id)
        for record in self.log:
            evolve(state, record)
        return state


def classroom(*participants: Participant) -> Classroom:
    """A room that ``participants`` (default: a teacher, an assistant, two students) joined."""
    room = Classroom()
    room.join(*(participants or EVERYONE))
    return room


def test_new_room_is_empty() -> None:
    state = new_room("r")
    assert state.room_id == "r"
    assert state.last_id == 0
    assert not state.locked and state.ended is None
    assert state.participants == {} and state.hands == [] and state.questions == {}


def test_evolve_sets_last_id_to_the_record_id() -> None:
    state = new_room("r")
    evolve(state, Record(7, START_MS, HandRaisedEvent("s1", "Sam")))
    assert state.last_id == 7


def test_state_is_the_fold_of_the_events_decide_produced() -> None:
    room = classroom()
    room.do(STUDENT, ChatSend("hello"))
    room.do(STUDENT, ChatSend("help", to="staff"))
    room.do(TEACHER, ChatSend("sure", to="s1"))
    room.do(STUDENT, HandRaise())
    room.do(OTHER, HandRaise())
    room.do(TEACHER, HandCallNext())
    room.do(STUDENT, QuestionAsk("why?"))
    room.do(OTHER, QuestionUpvote(1))
    room.do(ASSISTANT, QuestionPin(1, True))
    room.do(TEACHER, PollOpen("pick", ("a", "b", "c"), True))
    room.do(STUDENT, PollAnswer(1, (2, 0)))
    room.do(OTHER, PollAnswer(1, (1,)))
    room.do(TEACHER, PollClose(1))
    room.do(TEACHER, ChatMute(True, "s2"))
    room.do(TEACHER, RoomLock(True))
    room.do(TEACHER, ParticipantRemove("s2", "spam"))
    assert room.replay() == room.state
    assert room.state.last_id == len(room.log)


def test_question_and_poll_ids_count_from_one_in_order() -> None:
    room = classroom()
    asked = [room.do(STUDENT, QuestionAsk(f"q{n}"))[0] for n in range(3)]
    assert [e.question_id for e in asked if isinstance(e, QuestionAskedEvent)] == [1, 2, 3]
    room.do(TEACHER, QuestionDismiss(2))
    assert room.do(OTHER, QuestionAsk("q4")) == [QuestionAskedEvent(4, "s2", "Sue", "q4")]
    room.do(TEACHER, PollOpen("p1", ("a", "b"), False))
    room.do(TEACHER, PollClose(1))
    assert room.do(TEACHER, PollOpen("p2", ("a", "b"), False)) == [
        PollOpenedEvent(2, "p2", ("a", "b"), False, "t1")
    ]


def test_ids_are_deterministic_under_replay() -> None:
    room = classroom()
    room.do(STUDENT, QuestionAsk("first"))
    room.do(TEACHER, PollOpen("p", ("a", "b"), False))
    replayed = room.replay()
    command = QuestionAsk("second")
    assert decide(replayed, OTHER, command) == decide(room.state, OTHER, command)
    poll = PollOpen("p2", ("x", "y"), False)
    assert decide(replayed, TEACHER, poll) == decide(room.state, TEACHER, poll)


def test_decide_never_mutates_state() -> None:
    room = classroom()
    room.do(STUDENT, HandRaise())
    before = room.replay()
    for actor, command in [
        (TEACHER, HandCallNext()),
        (STUDENT, QuestionAsk("q")),
        (TEACHER, PollOpen("p", ("a", "b"), False)),
        (TEACHER, ParticipantRemove("s1")),
        (STUDENT, Leave()),
    ]:
        decide(room.state, actor, command)
    assert room.state == before


def test_evolve_ignores_events_about_unknown_questions_and_polls() -> None:
    state = new_room("r")
    for n, event in enumerate(
        [
            QuestionUpvotedEvent(9, "s1"),
            PollAnsweredEvent(9, "s1", (0,)),
            ChatMessageEvent("s1", "Sam", Role.STUDENT, "hi", "s1"),
        ],
        start=1,
    ):
        evolve(state, Record(n, START_MS, event))
    assert state.questions == {} and state.polls == {}
    assert state.last_id == 3


def test_chat_history_keeps_the_last_200_per_conversation() -> None:
    room = classroom()
    for n in range(250):
        room.do(STUDENT, ChatSend(f"m{n}"))
    assert len(room.state.chat) == 200
    assert room.state.chat[0].event == ChatMessageEvent("s1", "Sam", Role.STUDENT, "m50", None)


ACTORS = st.sampled_from(EVERYONE)
IDENTITIES = st.sampled_from([p.identity for p in EVERYONE] + ["ghost"])
SMALL_ID = st.integers(min_value=0, max_value=4)
COMMANDS_STRATEGY: st.SearchStrategy[Command] = st.one_of(
    st.builds(ChatSend, st.sampled_from(["hi", ""]), st.sampled_from([None, "staff", "s1"])),
    st.just(HandRaise()),
    st.builds(HandLower, st.one_of(st.none(), IDENTITIES)),
    st.just(HandCallNext()),
    st.just(HandLowerAll()),
    st.builds(QuestionAsk, st.just("q")),
    st.builds(QuestionUpvote, SMALL_ID),
    st.builds(QuestionUnvote, SMALL_ID),
    st.builds(QuestionAnswer, SMALL_ID),
    st.builds(QuestionDismiss, SMALL_ID),
    st.builds(QuestionPin, SMALL_ID, st.booleans()),
    st.builds(PollOpen, st.just("p"), st.just(("a", "b", "c")), st.booleans()),
    st.builds(PollAnswer, SMALL_ID, st.lists(SMALL_ID, max_size=3).map(tuple)),
    st.builds(PollClose, SMALL_ID),
    st.builds(ChatMute, st.booleans(), st.one_of(st.none(), IDENTITIES)),
    st.builds(ParticipantRemove, IDENTITIES),
    st.builds(RoomLock, st.booleans()),
    st.just(Leave()),
)
BREAKOUT_NAMES = st.sampled_from(["red", "blue", "green"])
MEDIA_COMMANDS: st.SearchStrategy[Command] = st.one_of(
    st.builds(MediaMode, st.sampled_from(["lecture", "discussion", "opera"])),
    st.builds(
        MediaMute,
        st.sampled_from(["camera", "microphone", "screen", "radio"]),
        st.booleans(),
        st.one_of(st.none(), IDENTITIES),
    ),
    st.builds(MediaPermit, IDENTITIES, st.booleans()),
    st.builds(MediaSpotlight, st.one_of(st.none(), IDENTITIES)),
    st.builds(StageSet, st.sampled_from(["video", "board", "poster"])),
)
PLACES = st.one_of(st.none(), BREAKOUT_NAMES)
BREAKOUT_COMMANDS: st.SearchStrategy[Command] = st.one_of(
    st.builds(
        BreakoutOpen,
        st.lists(BREAKOUT_NAMES, min_size=1, max_size=2, unique=True).map(tuple),
        st.one_of(st.none(), st.dictionaries(IDENTITIES, BREAKOUT_NAMES, max_size=2)),
        st.one_of(st.none(), st.just({}), st.just({"apart": (("s1", "s2"),)})),
        st.one_of(st.none(), st.integers(min_value=0, max_value=90_000)),
        st.one_of(st.none(), st.integers(min_value=0, max_value=70)),
        st.one_of(st.none(), st.booleans()),
        st.one_of(st.none(), st.integers(min_value=0, max_value=2)),
    ),
    st.builds(
        BreakoutAssign,
        st.one_of(st.none(), st.dictionaries(IDENTITIES, PLACES, max_size=3)),
        st.one_of(st.none(), st.just({})),
    ),
    st.builds(BreakoutMove, IDENTITIES, PLACES),
    st.builds(BreakoutChoose, PLACES),
    st.builds(BreakoutTimer, st.one_of(st.none(), st.integers(min_value=0, max_value=90_000))),
    st.builds(BreakoutBroadcast, st.sampled_from(["all back in 2", ""])),
    st.just(BreakoutHelp()),
    st.builds(BreakoutHelpDone, st.one_of(st.none(), IDENTITIES)),
    st.builds(BreakoutShareBoards, st.booleans()),
    st.builds(BreakoutExpire, st.integers(min_value=0, max_value=3), st.just(START_MS)),
    st.just(BreakoutClose()),
    st.builds(ChatSend, st.just("in here"), st.none(), PLACES),
    st.builds(QuestionAsk, st.just("q?"), PLACES),
    st.builds(QuestionUpvote, SMALL_ID),
    st.just(HandRaise()),
    st.just(HandCallNext()),
)
ALL_COMMANDS: st.SearchStrategy[Command] = st.sampled_from(
    [COMMANDS_STRATEGY, MEDIA_COMMANDS, BREAKOUT_COMMANDS]
).flatmap(lambda commands: commands)
"""Every kind of command, each group (the rest, media, breakout rooms) a third of the draws."""
BREAKOUT_SESSIONS: st.SearchStrategy[list[tuple[Participant, Command]]] = st.lists(
    st.tuples(
        st.sampled_from((TEACHER, ASSISTANT, *EVERYONE)),
        st.one_of(
            MEDIA_COMMANDS,
            BREAKOUT_COMMANDS,
            st.builds(BreakoutMove, IDENTITIES, BREAKOUT_NAMES),
            st.builds(ParticipantRemove, IDENTITIES),
        ),
    ),
    max_size=40,
).map(lambda steps: [(TEACHER, BreakoutOpen(("red", "blue"))), *steps])
"""Steps of a class in breakout rooms: media, breakout and removal commands only, mostly sent
by the staff (students are refused them)."""


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(
        st.lists(st.tuples(ACTORS, ALL_COMMANDS), max_size=40),
        BREAKOUT_SESSIONS,
    )
)
def test_any_command_sequence_folds_to_the_same_state(
    steps: list[tuple[Participant, Command]],
) -> None:
    room = classroom()
    for actor, command in steps:
        try:
            room.do(actor, command)
        except RoomError:
            pass
    state = room.state
    assert room.replay() == state
    assert len(state.hands) == len(set(state.hands))
    assert all(state.participants[i].role is Role.STUDENT for i in state.hands)
    assert not set(state.hands) & state.removed
    # Dismissed questions leave the state, and full Q&A or polls push out the oldest finished
    # ones (rooms/bounds.py): what is kept is a subset of the ids handed out.
    assert set(state.questions) <= set(range(1, state.question_count + 1))
    assert set(state.polls) <= set(range(1, state.poll_count + 1))
    assert all(state.participants[i].role is Role.STUDENT for i in state.media_permitted)
    assert not (state.media_permitted | set(state.breakout_of)) & state.removed
    assert state.spotlight is None or state.spotlight not in state.removed
    assert set(state.breakout_of.values()) <= set(state.breakouts)
    assert len(state.breakout_boards) == len(state.breakouts)
    assert set(state.breakout_chat) == set(state.breakouts)
    assert all(state.breakout_of.get(who) == room for who, room in state.breakout_help)
    assert all(
        len(c) <= 200 for c in [*state.breakout_chat.values(), *state.breakout_archive.values()]
    )
    assert (state.breakout_ends_at is None) or bool(state.breakouts)
    assert all(state.participants[i].role is not Role.TEACHER for i, _ in state.media_muted)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(ACTORS, ALL_COMMANDS), max_size=25),
    st.lists(st.tuples(ACTORS, ALL_COMMANDS), min_size=1, max_size=25),
)
def test_a_copied_state_evolves_apart_from_its_original(
    before: list[tuple[Participant, Command]], after: list[tuple[Participant, Command]]
) -> None:
    """What the batched write path relies on: evolving a copy never changes the original, and
    the copy evolves exactly as the original would have."""
    room = classroom()
    # Something of everything the later commands can change: questions, a poll, chat, a hand.
    room.do(STUDENT, QuestionAsk("why?"))
    room.do(OTHER, QuestionAsk("how?"))
    room.do(TEACHER, PollOpen("which?", ("a", "b"), False))
    room.do(STUDENT, ChatSend("hello", None))
    room.do(OTHER, HandRaise())
    for actor, command in before:
        try:
            room.do(actor, command)
        except RoomError:
            pass
    original = room.state
    frozen = state_to_data(original)
    copy = copy_state(original)
    assert copy == original
    twin = classroom()
    twin.state = copy_state(original)
    twin.log = list(room.log)
    room.state = copy
    for actor, command in after:
        for target in (room, twin):
            try:
                target.do(actor, command)
            except RoomError:
                pass
    assert state_to_data(original) == frozen
    assert room.state == twin.state


def test_copy_state_copies_every_field() -> None:
    """A field added to RoomState must be added to copy_state too (this lists them)."""
    assert [f.name for f in fields(RoomState)] == [
        "room_id", "class_name", "locked", "waiting_room", "waiting", "denied",
        "revoked_invites", "left", "ended",
        "participants", "removed", "chat_muted_all",
        "chat_muted", "hands", "chat", "threads", "questions", "polls", "question_count",
        "poll_count", "locked_boards", "board_cleared", "board_snapshots", "media_mode",
        "media_muted", "media_muted_all", "media_permitted", "spotlight", "stage", "breakout_round",
        "breakouts", "breakout_boards", "breakout_of", "breakout_ends_at", "breakout_warn_s",
        "breakout_self_select", "breakout_cap", "breakout_help", "breakout_chat",
        "breakout_archive", "gallery", "gallery_shared", "last_id",
    ]  # fmt: skip
