"""A room's state and the fold that builds it from the room's log.

``RoomState`` is a fold of :class:`Record` s: :func:`evolve` applies one record in place and is the
only code that writes a ``RoomState`` (after :func:`new_room`). :func:`rooms.decide` reads it and
never writes it, so replaying the log rebuilds exactly the state that produced it, question and
poll ids included.
"""

from collections import Counter, deque
from dataclasses import dataclass, field

from rooms.bounds import (
    POLLS_BYTES_MAX,
    POLLS_MAX,
    QUESTIONS_BYTES_MAX,
    QUESTIONS_MAX,
    Kept,
    make_room,
    poll_bytes,
    question_bytes,
)
from rooms.events import (
    BoardClearedEvent,
    BoardLockedEvent,
    BoardSnapshotSavedEvent,
    BreakoutAssignedEvent,
    BreakoutBoardsSharedEvent,
    BreakoutClosedEvent,
    BreakoutHelpAskedEvent,
    BreakoutHelpClearedEvent,
    BreakoutMovedEvent,
    BreakoutOpenedEvent,
    BreakoutTimerSetEvent,
    ChatMessageEvent,
    ChatMutedEvent,
    HandCalledEvent,
    HandLoweredEvent,
    HandRaisedEvent,
    HandsClearedEvent,
    InviteRevokedEvent,
    MediaModeChangedEvent,
    MediaMutedEvent,
    MediaPermittedEvent,
    MediaSpotlightedEvent,
    ParticipantAdmittedEvent,
    ParticipantDeniedEvent,
    ParticipantJoinedEvent,
    ParticipantLeftEvent,
    ParticipantRemovedEvent,
    ParticipantWaitingEvent,
    ParticipantWaitingLeftEvent,
    PollAnsweredEvent,
    PollClosedEvent,
    PollOpenedEvent,
    QuestionAnsweredEvent,
    QuestionAskedEvent,
    QuestionDismissedEvent,
    QuestionPinnedEvent,
    QuestionUnvotedEvent,
    QuestionUpvotedEvent,
    Record,
    RoomLockedEvent,
    RoomNamedEvent,
    SessionEndedEvent,
    StageChangedEvent,
    WaitingRoomSetEvent,
)
from rooms.participant import Participant
from rooms.roles import Role, is_staff
from rooms.stage import DEFAULT_STAGE

CHAT_HISTORY = 200
"""Chat messages kept per conversation (the room-wide chat and each private thread)."""


@dataclass(slots=True)
class Question:
    """A question in the Q&A; ``ts`` (epoch ms) is when it was asked; ``voters`` upvoted it."""

    question_id: int
    author: str
    name: str
    text: str
    ts: int
    voters: set[str] = field(default_factory=set)
    answered: bool = False
    pinned: bool = False
    room: str | None = None

    @property
    def votes(self) -> int:
        """The number of upvotes."""
        return len(self.voters)

    @property
    def size(self) -> int:
        """Its estimated bytes in a ``RoomView`` (:func:`rooms.bounds.question_bytes`)."""
        return question_bytes(self.author, self.name, self.text)


@dataclass(slots=True)
class Poll:
    """A poll; ``answers`` maps a student's identity to their choices (0-based, ascending).

    ``tally`` and ``voters`` are the published results, set when the poll closes.
    """

    poll_id: int
    question: str
    options: tuple[str, ...]
    multiple: bool
    open: bool = True
    answers: dict[str, tuple[int, ...]] = field(default_factory=dict)
    tally: tuple[int, ...] | None = None
    voters: int | None = None

    def current_tally(self) -> tuple[int, ...]:
        """Votes per option: the published tally once closed, else counted from ``answers``."""
        if self.tally is not None:
            return self.tally
        counts = Counter(choice for choices in self.answers.values() for choice in choices)
        return tuple(counts[index] for index in range(len(self.options)))

    def current_voters(self) -> int:
        """Students who answered: the published count once closed, else counted."""
        return self.voters if self.voters is not None else len(self.answers)

    @property
    def size(self) -> int:
        """Its estimated bytes in a ``RoomView`` (:func:`rooms.bounds.poll_bytes`)."""
        return poll_bytes(self.question, self.options)


def _chat_history() -> deque[Record]:
    return deque(maxlen=CHAT_HISTORY)


@dataclass(slots=True)
class RoomState:
    """Everything the room's rules and snapshots need, folded from the room's log.

    - ``class_name``: the class's display name (``room.named``), None until staff name it.
    - ``waiting_room``: students who never joined wait to be admitted; ``waiting``: who waits,
      identity -> display name, first come first; ``denied``: identities staff turned away for
      the rest of the session. An admitted student becomes a participant (``participants``).
    - ``revoked_invites``: invite links staff revoked; they admit no new identity.
    - ``left``: identities whose last word was ``leave``; their next join is recorded again.
    - ``participants``: everyone who ever joined, by identity (latest name and role).
    - ``removed``: identities removed for the rest of the session.
    - ``ended``: ``(reason, by)`` once the session ended.
    - ``chat_muted_all``: every student's chat is muted; ``chat_muted``: muted students.
    - ``hands``: identities with a raised hand, first raised first.
    - ``chat``: the last ``CHAT_HISTORY`` room-wide chat records; ``threads``: the last
      ``CHAT_HISTORY`` records of each private thread, by the thread's student.
    - ``questions`` / ``polls``: by id, the ones the room keeps (:mod:`rooms.bounds`): a
      dismissed question leaves, and a new question or poll pushes out the oldest answered or
      closed ones it needs room from; ``question_count`` / ``poll_count``: the highest id
      handed out.
    - ``locked_boards``: whiteboards students may not write; ``board_cleared`` and
      ``board_snapshots``: by board, the id of the last ``board.cleared`` /
      ``board.snapshot_saved`` record (the whiteboard service carries out the newest it has not).
    - ``media_mode``: ``"discussion"`` (anyone with the ``can_publish`` grant publishes) or
      ``"lecture"`` (only staff publish in the main room); ``media_muted``: ``(identity,
      source)`` pairs staff muted; ``media_muted_all``: sources muted for every student;
      ``media_permitted``: students staff let publish whatever the mode and their grant;
      ``spotlight``: the identity in the spotlight, if any. :mod:`rooms.media` reads these.
    - ``stage``: what staff put on every page's stage, ``"video"`` or ``"board"``
      (:mod:`rooms.stage`).
    - Breakout rooms: ``breakout_round`` numbers the openings (0: never opened);
      ``breakouts``: the open breakout rooms, in opening order, ``breakout_boards`` their
      whiteboards (same order); ``breakout_of``: identity -> its breakout room (absent: the
      main room), its *place*; ``breakout_ends_at``: when the round closes (epoch ms, None: no
      timer), ``breakout_warn_s``: the warning before it; ``breakout_self_select`` and
      ``breakout_cap``: students pick their room, at most ``cap`` per room;
      ``breakout_help``: the help queue, ``(identity, room)`` oldest first; ``breakout_chat``:
      the last ``CHAT_HISTORY`` room-wide messages of each open breakout room (the main room's
      are ``chat``); ``breakout_archive``: those of the latest closed round (staff read them);
      ``gallery``: ``(round, room, board)`` of the latest closed round, ``gallery_shared``:
      students may read those boards. A hand belongs to its owner's place: a change of place
      lowers it, and takes the owner off the help queue.
    - ``last_id``: the id of the last record folded (0 for a new room).
    """

    room_id: str
    class_name: str | None = None
    locked: bool = False
    waiting_room: bool = False
    waiting: dict[str, str] = field(default_factory=dict)
    denied: set[str] = field(default_factory=set)
    revoked_invites: set[str] = field(default_factory=set)
    left: set[str] = field(default_factory=set)
    ended: tuple[str, str] | None = None
    participants: dict[str, Participant] = field(default_factory=dict)
    removed: set[str] = field(default_factory=set)
    chat_muted_all: bool = False
    chat_muted: set[str] = field(default_factory=set)
    hands: list[str] = field(default_factory=list)
    chat: deque[Record] = field(default_factory=_chat_history)
    threads: dict[str, deque[Record]] = field(default_factory=dict)
    questions: dict[int, Question] = field(default_factory=dict)
    polls: dict[int, Poll] = field(default_factory=dict)
    question_count: int = 0
    poll_count: int = 0
    locked_boards: set[str] = field(default_factory=set)
    board_cleared: dict[str, int] = field(default_factory=dict)
    board_snapshots: dict[str, int] = field(default_factory=dict)
    media_mode: str = "discussion"
    media_muted: set[tuple[str, str]] = field(default_factory=set)
    media_muted_all: set[str] = field(default_factory=set)
    media_permitted: set[str] = field(default_factory=set)
    spotlight: str | None = None
    stage: str = DEFAULT_STAGE
    breakout_round: int = 0
    breakouts: tuple[str, ...] = ()
    breakout_boards: tuple[str, ...] = ()
    breakout_of: dict[str, str] = field(default_factory=dict)
    breakout_ends_at: int | None = None
    breakout_warn_s: int = 60
    breakout_self_select: bool = False
    breakout_cap: int | None = None
    breakout_help: list[tuple[str, str]] = field(default_factory=list)
    breakout_chat: dict[str, deque[Record]] = field(default_factory=dict)
    breakout_archive: dict[str, deque[Record]] = field(default_factory=dict)
    gallery: tuple[tuple[int, str, str], ...] = ()
    gallery_shared: bool = False
    last_id: int = 0

    def display_name(self, identity: str) -> str:
        """The name ``identity`` last joined with, or the identity itself if it never joined."""
        participant = self.participants.get(identity)
        return participant.name if participant is not None else identity

    def place_of(self, identity: str) -> str | None:
        """The breakout room ``identity`` is in, or None for the main room."""
        return self.breakout_of.get(identity)

    def board_of(self, room: str) -> str | None:
        """The whiteboard of open breakout ``room``, or None when it is not open."""
        try:
            return self.breakout_boards[self.breakouts.index(room)]
        except (ValueError, IndexError):
            return None

    def student_media_mutes(self, source: str) -> set[tuple[str, str]]:
        """The ``media_muted`` pairs of ``source`` held by students: what unmuting ``source``
        for every student lifts (an assistant's own mute stays; only the teacher lifts it)."""
        return {
            (identity, of)
            for identity, of in self.media_muted
            if of == source and not _is_staff_identity(self, identity)
        }


def new_room(room_id: str) -> RoomState:
    """The state of a room whose log is empty."""
    return RoomState(room_id=room_id)


def copy_state(state: RoomState) -> RoomState:
    """A copy of ``state`` that :func:`evolve` can change without changing ``state``.

    Containers, questions and polls are copied; what they hold is immutable (participants,
    records, tuples) and is shared. O(size of the state): a write path that decides several
    commands in a row evolves a copy, so a batch that does not commit leaves ``state`` as it was.
    """
    return RoomState(
        room_id=state.room_id,
        class_name=state.class_name,
        locked=state.locked,
        waiting_room=state.waiting_room,
        waiting=dict(state.waiting),
        denied=set(state.denied),
        revoked_invites=set(state.revoked_invites),
        left=set(state.left),
        ended=state.ended,
        participants=dict(state.participants),
        removed=set(state.removed),
        chat_muted_all=state.chat_muted_all,
        chat_muted=set(state.chat_muted),
        hands=list(state.hands),
        chat=deque(state.chat, maxlen=CHAT_HISTORY),
        threads={k: deque(v, maxlen=CHAT_HISTORY) for k, v in state.threads.items()},
        questions={k: _copy_question(q) for k, q in state.questions.items()},
        polls={k: _copy_poll(p) for k, p in state.polls.items()},
        question_count=state.question_count,
        poll_count=state.poll_count,
        locked_boards=set(state.locked_boards),
        board_cleared=dict(state.board_cleared),
        board_snapshots=dict(state.board_snapshots),
        media_mode=state.media_mode,
        media_muted=set(state.media_muted),
        media_muted_all=set(state.media_muted_all),
        media_permitted=set(state.media_permitted),
        spotlight=state.spotlight,
        stage=state.stage,
        breakout_round=state.breakout_round,
        breakouts=state.breakouts,
        breakout_boards=state.breakout_boards,
        breakout_of=dict(state.breakout_of),
        breakout_ends_at=state.breakout_ends_at,
        breakout_warn_s=state.breakout_warn_s,
        breakout_self_select=state.breakout_self_select,
        breakout_cap=state.breakout_cap,
        breakout_help=list(state.breakout_help),
        breakout_chat={k: deque(v, maxlen=CHAT_HISTORY) for k, v in state.breakout_chat.items()},
        breakout_archive={
            k: deque(v, maxlen=CHAT_HISTORY) for k, v in state.breakout_archive.items()
        },
        gallery=state.gallery,
        gallery_shared=state.gallery_shared,
        last_id=state.last_id,
    )


def _copy_question(q: Question) -> Question:
    return Question(
        q.question_id, q.author, q.name, q.text, q.ts, set(q.voters), q.answered, q.pinned, q.room
    )


def _copy_poll(p: Poll) -> Poll:
    return Poll(
        p.poll_id, p.question, p.options, p.multiple, p.open, dict(p.answers), p.tally, p.voters
    )


def evolve(state: RoomState, record: Record) -> None:
    """Apply one log record to ``state`` in place and set ``state.last_id`` to its id.

    This is the only writer of a ``RoomState``. It never raises for an event that
    :func:`rooms.decide` or :func:`rooms.admit` produced; an event that refers to a question or
    poll the state does not know is ignored, so a damaged log cannot stop a room.
    """
    event = record.event
    match event:
        case ParticipantJoinedEvent():
            state.participants[event.identity] = Participant(event.identity, event.name, event.role)
            state.waiting.pop(event.identity, None)  # entered once the waiting room was off
            state.left.discard(event.identity)
            if is_staff(event.role):
                # Staff never have a hand up, are never chat-muted and publish by their grant.
                _lower_hand(state, event.identity)
                state.chat_muted.discard(event.identity)
                state.media_permitted.discard(event.identity)
            if event.role is Role.TEACHER:
                # Nobody mutes the teacher.
                state.media_muted -= {
                    (identity, of)
                    for identity, of in state.media_muted
                    if identity == event.identity
                }
        case ChatMessageEvent():
            if event.thread is not None:
                state.threads.setdefault(event.thread, _chat_history()).append(record)
            elif event.broadcast:
                state.chat.append(record)
                for conversation in state.breakout_chat.values():
                    conversation.append(record)
            elif event.room is None:
                state.chat.append(record)
            elif event.room in state.breakout_chat:
                state.breakout_chat[event.room].append(record)
        case HandRaisedEvent():
            if event.identity not in state.hands:
                state.hands.append(event.identity)
        case HandLoweredEvent() | HandCalledEvent():
            _lower_hand(state, event.identity)
        case HandsClearedEvent():
            state.hands.clear()
        case QuestionAskedEvent():
            asked = Question(
                event.question_id, event.author, event.name, event.text, record.ts, room=event.room
            )
            for question_id in questions_to_drop(state, asked.size, only_answered=False) or ():
                del state.questions[question_id]
            state.questions[event.question_id] = asked
            state.question_count = max(state.question_count, event.question_id)
        case QuestionUpvotedEvent():
            if question := state.questions.get(event.question_id):
                question.voters.add(event.identity)
        case QuestionUnvotedEvent():
            if question := state.questions.get(event.question_id):
                question.voters.discard(event.identity)
        case QuestionAnsweredEvent():
            if question := state.questions.get(event.question_id):
                question.answered = True
        case QuestionDismissedEvent():
            state.questions.pop(event.question_id, None)
        case QuestionPinnedEvent():
            if question := state.questions.get(event.question_id):
                question.pinned = event.pinned
        case PollOpenedEvent():
            opened = Poll(event.poll_id, event.question, event.options, event.multiple)
            for poll_id in polls_to_drop(state, opened.size, only_closed=False) or ():
                del state.polls[poll_id]
            state.polls[event.poll_id] = opened
            state.poll_count = max(state.poll_count, event.poll_id)
        case PollAnsweredEvent():
            if poll := state.polls.get(event.poll_id):
                poll.answers[event.identity] = event.choices
        case PollClosedEvent():
            if poll := state.polls.get(event.poll_id):
                poll.open = False
                poll.tally = event.tally
                poll.voters = event.voters
        case ChatMutedEvent():
            if event.identity is None:
                state.chat_muted_all = event.muted
                if not event.muted:
                    # "Unmute every student" also lifts the individual mutes.
                    state.chat_muted.clear()
            elif event.muted:
                state.chat_muted.add(event.identity)
            else:
                state.chat_muted.discard(event.identity)
        case ParticipantRemovedEvent():
            state.removed.add(event.identity)
            _lower_hand(state, event.identity)
            state.media_permitted.discard(event.identity)
            if state.spotlight == event.identity:
                state.spotlight = None
            state.breakout_of.pop(event.identity, None)
            _clear_help(state, event.identity)
        case RoomLockedEvent():
            state.locked = event.locked
        case RoomNamedEvent():
            state.class_name = event.class_name
        case WaitingRoomSetEvent():
            state.waiting_room = event.enabled
        case ParticipantWaitingEvent():
            state.waiting[event.identity] = event.name
        case ParticipantWaitingLeftEvent():
            state.waiting.pop(event.identity, None)
        case ParticipantAdmittedEvent():
            state.waiting.pop(event.identity, None)
            if event.identity not in state.participants:
                state.participants[event.identity] = Participant(
                    event.identity, event.name, Role.STUDENT
                )
        case ParticipantLeftEvent():
            state.left.add(event.identity)
        case InviteRevokedEvent():
            state.revoked_invites.add(event.invite_id)
        case ParticipantDeniedEvent():
            state.waiting.pop(event.identity, None)
            state.denied.add(event.identity)
        case BoardLockedEvent():
            if event.locked:
                state.locked_boards.add(event.board)
            else:
                state.locked_boards.discard(event.board)
        case BoardClearedEvent():
            state.board_cleared[event.board] = record.id
        case BoardSnapshotSavedEvent():
            state.board_snapshots[event.board] = record.id
        case MediaModeChangedEvent():
            state.media_mode = event.mode
        case MediaMutedEvent():
            _fold_media_mute(state, event)
        case MediaPermittedEvent():
            if event.allowed:
                state.media_permitted.add(event.identity)
            else:
                state.media_permitted.discard(event.identity)
        case MediaSpotlightedEvent():
            state.spotlight = event.identity
        case StageChangedEvent():
            state.stage = event.view
        case BreakoutOpenedEvent():
            _fold_breakout_opened(state, event, record.ts)
        case BreakoutAssignedEvent():
            for identity, room in event.members.items():
                _move(state, identity, room)
        case BreakoutMovedEvent():
            _move(state, event.identity, event.room)
        case BreakoutTimerSetEvent():
            if state.breakouts:
                state.breakout_ends_at = _ends_at(record.ts, event.remaining_s)
        case BreakoutHelpAskedEvent():
            if event.identity not in (identity for identity, _ in state.breakout_help):
                state.breakout_help.append((event.identity, event.room))
        case BreakoutHelpClearedEvent():
            _clear_help(state, event.identity)
        case BreakoutBoardsSharedEvent():
            state.gallery_shared = event.shared
        case BreakoutClosedEvent():
            if state.breakouts and event.round in (0, state.breakout_round):
                _fold_breakout_closed(state)
        case SessionEndedEvent():
            state.ended = (event.reason, event.by)
    state.last_id = record.id


def questions_to_drop(state: RoomState, size: int, *, only_answered: bool) -> list[int] | None:
    """The ids of the questions that leave so a new one of ``size`` bytes fits the room's bounds
    (:func:`rooms.bounds.make_room`; None: answered ones cannot make room)."""
    kept = (Kept(q.question_id, q.size, q.answered) for q in state.questions.values())
    return make_room(kept, size, QUESTIONS_MAX, QUESTIONS_BYTES_MAX, only_done=only_answered)


def polls_to_drop(state: RoomState, size: int, *, only_closed: bool) -> list[int] | None:
    """The ids of the polls that leave so a new one of ``size`` bytes fits the room's bounds
    (:func:`rooms.bounds.make_room`; None: closed ones cannot make room)."""
    kept = (Kept(p.poll_id, p.size, not p.open) for p in state.polls.values())
    return make_room(kept, size, POLLS_MAX, POLLS_BYTES_MAX, only_done=only_closed)


def _ends_at(ts: int, seconds: int | None) -> int | None:
    return None if seconds is None else ts + seconds * 1000


def _fold_breakout_opened(state: RoomState, event: BreakoutOpenedEvent, ts: int) -> None:
    state.breakout_round = event.round or state.breakout_round + 1
    state.breakouts = event.rooms
    # A log entry older than rounds named each room's board after the room.
    state.breakout_boards = event.boards or event.rooms
    state.breakout_ends_at = _ends_at(ts, event.duration_s)
    state.breakout_warn_s = event.warn_s
    state.breakout_self_select = event.self_select
    state.breakout_cap = event.cap
    state.breakout_help.clear()
    state.breakout_chat = {room: _chat_history() for room in event.rooms}
    state.gallery_shared = False
    state.breakout_of.clear()
    for identity, room in event.members.items():
        _move(state, identity, room)


def _fold_breakout_closed(state: RoomState) -> None:
    for identity in state.breakout_of:
        _lower_hand(state, identity)
    state.gallery = tuple(
        (state.breakout_round, room, board)
        for room, board in zip(state.breakouts, state.breakout_boards, strict=False)
    )
    state.breakout_archive = state.breakout_chat
    state.breakout_chat = {}
    state.breakouts = ()
    state.breakout_boards = ()
    state.breakout_of.clear()
    state.breakout_ends_at = None
    state.breakout_self_select = False
    state.breakout_cap = None
    state.breakout_help.clear()


def _move(state: RoomState, identity: str, room: str | None) -> None:
    """Put ``identity`` in ``room`` (None: the main room); a change of place lowers their hand
    and takes them off the help queue. A room that is not open, or a removed identity, is
    ignored."""
    if identity in state.removed or (room is not None and room not in state.breakouts):
        return
    if state.breakout_of.get(identity) == room:
        return
    if room is None:
        del state.breakout_of[identity]
    else:
        state.breakout_of[identity] = room
    _lower_hand(state, identity)
    _clear_help(state, identity)


def _clear_help(state: RoomState, identity: str) -> None:
    state.breakout_help[:] = [entry for entry in state.breakout_help if entry[0] != identity]


def _lower_hand(state: RoomState, identity: str) -> None:
    if identity in state.hands:
        state.hands.remove(identity)


def _fold_media_mute(state: RoomState, event: MediaMutedEvent) -> None:
    if event.identity is not None:
        if event.muted:
            state.media_muted.add((event.identity, event.source))
        else:
            state.media_muted.discard((event.identity, event.source))
    elif event.muted:
        state.media_muted_all.add(event.source)
    else:
        state.media_muted_all.discard(event.source)
        state.media_muted -= state.student_media_mutes(event.source)


def _is_staff_identity(state: RoomState, identity: str) -> bool:
    participant = state.participants.get(identity)
    return participant is not None and participant.is_staff
