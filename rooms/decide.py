"""The room's rules: a command (or a join) against the current state gives events or an error.

:func:`decide` and :func:`admit` read ``RoomState`` and never write it; the caller appends the
events to the room's log and folds them with :func:`rooms.evolve`. An empty list means the command
changed nothing (raising a hand that is up) and is acknowledged with ``ids: []``.
Every rule is from docs/protocol.md, "Commands and the events they cause".

Checks run in this order: the session has not ended, the actor was not removed, the actor's role
may send the command, the targets exist, the values are in range, the room's bounds
(:mod:`rooms.bounds`) leave room. The media rules are in :mod:`rooms.decide_media`,
the breakout-room rules in :mod:`rooms.decide_breakout`, the stage's in
:mod:`rooms.decide_stage`, the checks they share in
:mod:`rooms.checks`.

Chat, questions and hands are scoped to a place (docs/protocol.md, "Breakout rooms"): a student
acts in the room they are in (their breakout room, or the main room), staff in theirs or in the
open breakout room they name; a student reaches only the questions and hands of their place.
"""

from rooms.boards import write_refusal
from rooms.bounds import (
    OPEN_QUESTIONS_PER_AUTHOR,
    REVOKED_INVITES_MAX,
    poll_bytes,
    question_bytes,
)
from rooms.checks import (
    check_board,
    check_reason,
    check_text,
    known_participant,
    require_staff,
)
from rooms.commands import (
    BoardClear,
    BoardLock,
    BoardSnapshot,
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
    ChatMute,
    ChatSend,
    Command,
    HandCallNext,
    HandLower,
    HandLowerAll,
    HandRaise,
    InviteRevoke,
    Leave,
    MediaMode,
    MediaMute,
    MediaPermit,
    MediaSpotlight,
    ParticipantRemove,
    PollAnswer,
    PollClose,
    PollOpen,
    QuestionAnswer,
    QuestionAsk,
    QuestionDismiss,
    QuestionPin,
    QuestionUnvote,
    QuestionUpvote,
    RoomLock,
    SessionEnd,
    StageSet,
    WaitingAdmit,
    WaitingDeny,
    WaitingKnock,
    WaitingLeave,
    WaitingRoom,
)
from rooms.decide_breakout import (
    breakout_assign,
    breakout_broadcast,
    breakout_choose,
    breakout_close,
    breakout_expire,
    breakout_help,
    breakout_help_done,
    breakout_move,
    breakout_open,
    breakout_share_boards,
    breakout_timer,
    scoped_room,
)
from rooms.decide_media import (
    media_mode,
    media_mute,
    media_permit,
    media_spotlight,
)
from rooms.decide_stage import stage_set
from rooms.decide_waiting import (
    must_wait,
    waiting_admit,
    waiting_deny,
    waiting_knock,
    waiting_leave,
    waiting_room,
)
from rooms.errors import (
    AlreadyVoted,
    BadField,
    ChatMuted,
    InvalidChoice,
    InviteRevoked,
    JoinDenied,
    LimitReached,
    MustWait,
    NoRaisedHands,
    NoSuchPoll,
    NoSuchQuestion,
    NotAllowed,
    NotVoted,
    ParticipantRemoved,
    PollClosed,
    QuestionClosed,
    RoomLocked,
    SessionEnded,
)
from rooms.events import (
    BoardClearedEvent,
    BoardLockedEvent,
    BoardSnapshotSavedEvent,
    ChatMessageEvent,
    ChatMutedEvent,
    Event,
    HandCalledEvent,
    HandLoweredEvent,
    HandRaisedEvent,
    HandsClearedEvent,
    InviteRevokedEvent,
    ParticipantJoinedEvent,
    ParticipantLeftEvent,
    ParticipantRemovedEvent,
    PollAnsweredEvent,
    PollClosedEvent,
    PollOpenedEvent,
    QuestionAnsweredEvent,
    QuestionAskedEvent,
    QuestionDismissedEvent,
    QuestionPinnedEvent,
    QuestionUnvotedEvent,
    QuestionUpvotedEvent,
    RoomLockedEvent,
    RoomNamedEvent,
    SessionEndedEvent,
)
from rooms.participant import Participant
from rooms.roles import Role
from rooms.state import Poll, Question, RoomState, polls_to_drop, questions_to_drop

CHAT_TEXT_MAX = 2000
QUESTION_TEXT_MAX = 500
POLL_QUESTION_MAX = 300
POLL_OPTION_MAX = 100
POLL_OPTIONS_MIN = 2
POLL_OPTIONS_MAX = 10
INVITE_ID_MAX = 64
"""Characters in an invite link's id (``invite.revoke``)."""
CLASS_NAME_MAX = 100
"""Characters in a class's display name at most (the access token's ``class_name`` claim)."""
STAFF_THREAD = "staff"
"""A student's ``chat.send`` ``to`` that opens their private thread with the staff."""


def admit(state: RoomState, participant: Participant, class_name: str | None = None) -> list[Event]:
    """Check a join and return the events it causes.

    Returns ``[ParticipantJoinedEvent]`` the first time an identity joins, or when it comes back
    with another name or role, or after it left (``leave``); else ``[]``. When staff join with
    ``class_name`` (their token's claim) and the room has no name yet, a ``RoomNamedEvent``
    follows: the first name is kept (docs/decisions/0018-class-name-waiting-room.md); a
    student's ``class_name`` names nothing.

    Raises:
        SessionEnded: the session was ended.
        ParticipantRemoved: the identity was removed from this session.
        JoinDenied: staff turned the identity away from the waiting room.
        InviteRevoked: the identity never joined and its token came from an invite link staff
            revoked (``Participant.invite``).
        MustWait: the waiting room is on and this student never joined (nor was admitted):
            they wait (:func:`rooms.decide_waiting.must_wait`); it is a ``RoomLocked``.
        RoomLocked: the room is locked and this identity never joined it (staff always may).
    """
    if state.ended is not None:
        raise SessionEnded("the session has ended")
    if participant.identity in state.removed:
        raise ParticipantRemoved("you were removed from this session")
    if participant.identity in state.denied:
        raise JoinDenied("the teacher did not let you in to this class")
    known = state.participants.get(participant.identity)
    if known is None and participant.invite in state.revoked_invites:
        raise InviteRevoked("this invite link was closed; ask the teacher for a new one")
    if must_wait(state, participant):
        raise MustWait("the teacher lets you in from the waiting room")
    if known is None and state.locked and not participant.is_staff:
        raise RoomLocked("the room is locked")
    events: list[Event] = []
    if (
        known is None
        or (known.name, known.role) != (participant.name, participant.role)
        or participant.identity in state.left
    ):
        events.append(
            ParticipantJoinedEvent(participant.identity, participant.name, participant.role)
        )
    if class_name and state.class_name is None and participant.is_staff:
        events.append(RoomNamedEvent(class_name, participant.identity))
    return events


def decide(state: RoomState, actor: Participant, command: Command) -> list[Event]:
    """Check ``command`` sent by ``actor`` against ``state``; return the events it causes.

    ``actor`` is the sender as its access token describes it (role included).

    Raises:
        SessionEnded: the session was ended (every command is refused).
        ParticipantRemoved: the actor was removed.
        RoomError: the command breaks a rule: ``NotAllowed``, ``ChatMuted``, ``BadField``
            (with ``field``), ``NoSuchParticipant``, ``NoSuchQuestion``, ``QuestionClosed``,
            ``AlreadyVoted``, ``NotVoted``, ``NoSuchPoll``, ``PollClosed``, ``InvalidChoice``,
            ``NoRaisedHands``, ``BreakoutsOpen``, ``NoSuchBreakout``, ``BreakoutFull``,
            ``LimitReached`` (a bound of :mod:`rooms.bounds`).
        TypeError: ``command`` is not one of the classes in ``COMMANDS``.
    """
    if state.ended is not None:
        raise SessionEnded("the session has ended")
    if actor.identity in state.removed:
        raise ParticipantRemoved("you were removed from this session")
    match command:
        case ChatSend():
            return _chat_send(state, actor, command)
        case HandRaise():
            return _hand_raise(state, actor)
        case HandLower():
            return _hand_lower(state, actor, command)
        case HandCallNext():
            return _hand_call_next(state, actor)
        case HandLowerAll():
            return _hand_lower_all(state, actor)
        case QuestionAsk():
            return _question_ask(state, actor, command)
        case QuestionUpvote():
            return _question_upvote(state, actor, command)
        case QuestionUnvote():
            return _question_unvote(state, actor, command)
        case QuestionAnswer():
            return _question_answer(state, actor, command)
        case QuestionDismiss():
            return _question_dismiss(state, actor, command)
        case QuestionPin():
            return _question_pin(state, actor, command)
        case PollOpen():
            return _poll_open(state, actor, command)
        case PollAnswer():
            return _poll_answer(state, actor, command)
        case PollClose():
            return _poll_close(state, actor, command)
        case ChatMute():
            return _chat_mute(state, actor, command)
        case ParticipantRemove():
            return _participant_remove(state, actor, command)
        case RoomLock():
            return _room_lock(state, actor, command)
        case WaitingRoom():
            return waiting_room(state, actor, command)
        case WaitingAdmit():
            return waiting_admit(state, actor, command)
        case WaitingDeny():
            return waiting_deny(state, actor, command)
        case InviteRevoke():
            return _invite_revoke(state, actor, command)
        case WaitingKnock():
            return waiting_knock(state, actor)
        case WaitingLeave():
            return waiting_leave(state, actor)
        case BoardLock():
            return _board_lock(state, actor, command)
        case BoardClear():
            require_staff(actor, "clear a whiteboard")
            check_board(state, command.board)
            kept = write_refusal(state, actor, command.board)  # staff: a closed round's board
            if kept is not None:
                raise NotAllowed(kept)
            return [BoardClearedEvent(command.board, actor.identity)]
        case BoardSnapshot():
            require_staff(actor, "save a whiteboard snapshot")
            check_board(state, command.board)
            return [BoardSnapshotSavedEvent(command.board, actor.identity)]
        case MediaMode():
            return media_mode(state, actor, command)
        case MediaMute():
            return media_mute(state, actor, command)
        case MediaPermit():
            return media_permit(state, actor, command)
        case MediaSpotlight():
            return media_spotlight(state, actor, command)
        case StageSet():
            return stage_set(state, actor, command)
        case BreakoutOpen():
            return breakout_open(state, actor, command)
        case BreakoutAssign():
            return breakout_assign(state, actor, command)
        case BreakoutMove():
            return breakout_move(state, actor, command)
        case BreakoutChoose():
            return breakout_choose(state, actor, command)
        case BreakoutTimer():
            return breakout_timer(state, actor, command)
        case BreakoutBroadcast():
            return breakout_broadcast(state, actor, command)
        case BreakoutHelp():
            return breakout_help(state, actor, command)
        case BreakoutHelpDone():
            return breakout_help_done(state, actor, command)
        case BreakoutShareBoards():
            return breakout_share_boards(state, actor, command)
        case BreakoutClose():
            return breakout_close(state, actor, command)
        case BreakoutExpire():
            return breakout_expire(state, command)
        case SessionEnd():
            return _session_end(actor, command)
        case Leave():
            return _leave(state, actor)
    raise TypeError(f"not a room command: {command!r}")


# Chat


def _chat_send(state: RoomState, actor: Participant, command: ChatSend) -> list[Event]:
    if command.to is not None and command.room is not None:
        raise BadField("a private message has no room", "room")
    if actor.is_staff:
        thread = command.to
        if thread is not None:
            student = known_participant(state, thread, "to")
            if student.role is not Role.STUDENT:
                raise NotAllowed("private chat is between the staff and one student", "to")
    else:
        if command.to not in (None, STAFF_THREAD):
            raise NotAllowed(f"a student writes to everyone or to {STAFF_THREAD!r}", "to")
        thread = None if command.to is None else actor.identity
        # A chat mute silences the room, never a student's line to the staff (docs/protocol.md).
        muted = state.chat_muted_all or actor.identity in state.chat_muted
        if muted and thread is None:
            raise ChatMuted("your chat is muted; you can still write to the staff privately")
    room = None if thread is not None else scoped_room(state, actor, command.room)
    check_text(command.text, "text", CHAT_TEXT_MAX)
    return [ChatMessageEvent(actor.identity, actor.name, actor.role, command.text, thread, room)]


def _chat_mute(state: RoomState, actor: Participant, command: ChatMute) -> list[Event]:
    require_staff(actor, "mute chat")
    if command.identity is None:
        if command.muted:
            changes = not state.chat_muted_all
        else:
            changes = state.chat_muted_all or bool(state.chat_muted)
    else:
        target = known_participant(state, command.identity, "identity")
        if target.is_staff:
            raise NotAllowed("staff chat is never muted", "identity")
        changes = command.muted != (command.identity in state.chat_muted)
    if not changes:
        return []
    return [ChatMutedEvent(command.identity, command.muted, actor.identity)]


# Hands


def _hand_raise(state: RoomState, actor: Participant) -> list[Event]:
    if actor.is_staff:
        raise NotAllowed("only students raise hands")
    if actor.identity in state.hands:
        return []
    return [HandRaisedEvent(actor.identity, actor.name, state.place_of(actor.identity))]


def _hand_lower(state: RoomState, actor: Participant, command: HandLower) -> list[Event]:
    identity = actor.identity if command.identity is None else command.identity
    if identity != actor.identity and not actor.is_staff:
        raise NotAllowed("a student lowers only their own hand", "identity")
    if identity not in state.hands:
        return []
    return [HandLoweredEvent(identity, actor.identity, state.place_of(identity))]


def _hand_call_next(state: RoomState, actor: Participant) -> list[Event]:
    require_staff(actor, "call on raised hands")
    place = state.place_of(actor.identity)
    first = next((who for who in state.hands if state.place_of(who) == place), None)
    if first is None:
        raise NoRaisedHands("no hand is raised in this room")
    return [HandCalledEvent(first, state.display_name(first), actor.identity, place)]


def _hand_lower_all(state: RoomState, actor: Participant) -> list[Event]:
    require_staff(actor, "lower every hand")
    if not state.hands:
        return []
    return [HandsClearedEvent(actor.identity)]


def _leave(state: RoomState, actor: Participant) -> list[Event]:
    events: list[Event] = []
    if actor.identity in state.hands:
        place = state.place_of(actor.identity)
        events.append(HandLoweredEvent(actor.identity, actor.identity, place))
    if actor.identity not in state.left:
        events.append(ParticipantLeftEvent(actor.identity))  # attendance: when they left
    return events


# Questions


def _question_ask(state: RoomState, actor: Participant, command: QuestionAsk) -> list[Event]:
    room = scoped_room(state, actor, command.room)
    check_text(command.text, "text", QUESTION_TEXT_MAX)
    open_ = sum(
        1 for q in state.questions.values() if q.author == actor.identity and not q.answered
    )
    if open_ >= OPEN_QUESTIONS_PER_AUTHOR:
        raise LimitReached(
            f"you have {OPEN_QUESTIONS_PER_AUTHOR} unanswered questions; wait for answers"
        )
    size = question_bytes(actor.identity, actor.name, command.text)
    if questions_to_drop(state, size, only_answered=True) is None:
        raise LimitReached("the Q&A is full; staff answer or dismiss questions to make room")
    question_id = state.question_count + 1
    return [QuestionAskedEvent(question_id, actor.identity, actor.name, command.text, room)]


def _question_upvote(state: RoomState, actor: Participant, command: QuestionUpvote) -> list[Event]:
    question = _votable_question(state, actor, command.question_id)
    if actor.identity in question.voters:
        raise AlreadyVoted("you already upvoted this question", "question_id")
    return [QuestionUpvotedEvent(question.question_id, actor.identity, question.room)]


def _question_unvote(state: RoomState, actor: Participant, command: QuestionUnvote) -> list[Event]:
    question = _votable_question(state, actor, command.question_id)
    if actor.identity not in question.voters:
        raise NotVoted("you did not upvote this question", "question_id")
    return [QuestionUnvotedEvent(question.question_id, actor.identity, question.room)]


def _question_answer(state: RoomState, actor: Participant, command: QuestionAnswer) -> list[Event]:
    require_staff(actor, "mark questions answered")
    question = _question(state, command.question_id)
    if question.answered:
        return []
    return [QuestionAnsweredEvent(question.question_id, actor.identity, question.room)]


def _question_dismiss(
    state: RoomState, actor: Participant, command: QuestionDismiss
) -> list[Event]:
    require_staff(actor, "dismiss questions")
    question = _question(state, command.question_id)
    return [QuestionDismissedEvent(question.question_id, actor.identity, question.room)]


def _question_pin(state: RoomState, actor: Participant, command: QuestionPin) -> list[Event]:
    require_staff(actor, "pin questions")
    question = _question(state, command.question_id)
    if question.pinned == command.pinned:
        return []
    return [
        QuestionPinnedEvent(question.question_id, command.pinned, actor.identity, question.room)
    ]


def _question(state: RoomState, question_id: int) -> Question:
    question = state.questions.get(question_id)
    if question is None:
        raise NoSuchQuestion(f"no question {question_id}", "question_id")
    return question


def _votable_question(state: RoomState, actor: Participant, question_id: int) -> Question:
    question = _question(state, question_id)
    if not actor.is_staff and question.room != state.place_of(actor.identity):
        # The same answer for a question of another room as for none, so that ids cannot be
        # probed across rooms.
        raise NoSuchQuestion(f"no question {question_id} in your room", "question_id")
    if question.answered:
        raise QuestionClosed("the question is answered", "question_id")
    return question


# Polls


def _poll_open(state: RoomState, actor: Participant, command: PollOpen) -> list[Event]:
    require_staff(actor, "open polls")
    check_text(command.question, "question", POLL_QUESTION_MAX)
    if not POLL_OPTIONS_MIN <= len(command.options) <= POLL_OPTIONS_MAX:
        raise BadField(
            f"a poll has {POLL_OPTIONS_MIN} to {POLL_OPTIONS_MAX} options, "
            f"not {len(command.options)}",
            "options",
        )
    for option in command.options:
        check_text(option, "options", POLL_OPTION_MAX)
    size = poll_bytes(command.question, command.options)
    if polls_to_drop(state, size, only_closed=True) is None:
        raise LimitReached("too many polls are open; close some first")
    poll_id = state.poll_count + 1
    return [
        PollOpenedEvent(
            poll_id, command.question, tuple(command.options), command.multiple, actor.identity
        )
    ]


def _poll_answer(state: RoomState, actor: Participant, command: PollAnswer) -> list[Event]:
    if actor.is_staff:
        raise NotAllowed("only students answer polls")
    poll = _open_poll(state, command.poll_id)
    choices = tuple(sorted(command.choices))
    if poll.multiple:
        if not choices or len(set(choices)) != len(choices):
            raise InvalidChoice("choose one or more distinct options", "choices")
    elif len(choices) != 1:
        raise InvalidChoice("choose exactly one option", "choices")
    if any(not 0 <= choice < len(poll.options) for choice in choices):
        raise InvalidChoice(f"choices are 0 to {len(poll.options) - 1}", "choices")
    if poll.answers.get(actor.identity) == choices:
        return []
    return [PollAnsweredEvent(poll.poll_id, actor.identity, choices)]


def _poll_close(state: RoomState, actor: Participant, command: PollClose) -> list[Event]:
    require_staff(actor, "close polls")
    poll = _open_poll(state, command.poll_id)
    return [
        PollClosedEvent(poll.poll_id, poll.current_tally(), poll.current_voters(), actor.identity)
    ]


def _open_poll(state: RoomState, poll_id: int) -> Poll:
    poll = state.polls.get(poll_id)
    if poll is None:
        raise NoSuchPoll(f"no poll {poll_id}", "poll_id")
    if not poll.open:
        raise PollClosed("the poll is closed", "poll_id")
    return poll


# Moderation


def _participant_remove(
    state: RoomState, actor: Participant, command: ParticipantRemove
) -> list[Event]:
    require_staff(actor, "remove participants")
    if command.identity in state.removed:
        return []
    target = known_participant(state, command.identity, "identity")
    if target.role is Role.TEACHER:
        raise NotAllowed("nobody removes the teacher", "identity")
    if target.role is Role.ASSISTANT and actor.role is not Role.TEACHER:
        raise NotAllowed("only the teacher removes an assistant", "identity")
    check_reason(command.reason)
    return [ParticipantRemovedEvent(target.identity, command.reason, actor.identity)]


def _room_lock(state: RoomState, actor: Participant, command: RoomLock) -> list[Event]:
    require_staff(actor, "lock the room")
    if state.locked == command.locked:
        return []
    return [RoomLockedEvent(command.locked, actor.identity)]


# Whiteboards


def _invite_revoke(state: RoomState, actor: Participant, command: InviteRevoke) -> list[Event]:
    require_staff(actor, "revoke an invite link")
    if not 0 < len(command.invite_id) <= INVITE_ID_MAX:
        raise BadField(f"invite_id is 1-{INVITE_ID_MAX} characters", "invite_id")
    if command.invite_id in state.revoked_invites:
        return []
    if len(state.revoked_invites) >= REVOKED_INVITES_MAX:
        raise LimitReached(
            f"a room revokes at most {REVOKED_INVITES_MAX} invite links", "invite_id"
        )
    return [InviteRevokedEvent(command.invite_id, actor.identity)]


def _board_lock(state: RoomState, actor: Participant, command: BoardLock) -> list[Event]:
    require_staff(actor, "lock a whiteboard")
    check_board(state, command.board)
    if (command.board in state.locked_boards) == command.locked:
        return []
    return [BoardLockedEvent(command.board, command.locked, actor.identity)]


def _session_end(actor: Participant, command: SessionEnd) -> list[Event]:
    if actor.role is not Role.TEACHER:
        raise NotAllowed("only the teacher ends the session")
    check_reason(command.reason)
    return [SessionEndedEvent(command.reason, actor.identity)]
