"""Why a command or a join was refused.

Every class here carries the stable ``code`` a client receives in an ``error`` frame
(docs/protocol.md, "Error codes"). The decoding errors (``bad_frame``, ``missing_field``, ...) and
the token errors belong to ``signaling``; this module holds the classroom's own.
"""

from typing import ClassVar

from rooms.close_codes import CloseCode


class RoomError(Exception):
    """A command or a join the room refuses; nothing changed.

    ``message`` is for people; ``field`` names the offending command field, if one is to blame.
    ``close_code`` is the close code that follows the error frame when the error ends the
    connection (a refused join, a removal), None when the connection goes on.
    """

    code: ClassVar[str]
    close_code: ClassVar[CloseCode | None] = None

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, field={self.field!r})"


class NotAllowed(RoomError):
    """The sender's role may not do this."""

    code = "not_allowed"


class ChatMuted(RoomError):
    """The sender's chat is muted."""

    code = "chat_muted"


class NoSuchParticipant(RoomError):
    """The identity is not a participant of the room (never joined, or removed)."""

    code = "no_such_participant"


class NoSuchQuestion(RoomError):
    """The question is unknown or was dismissed."""

    code = "no_such_question"


class QuestionClosed(RoomError):
    """The question is answered; it takes no more votes."""

    code = "question_closed"


class AlreadyVoted(RoomError):
    """This participant already upvoted the question."""

    code = "already_voted"


class NotVoted(RoomError):
    """Unvote of a question this participant did not upvote."""

    code = "not_voted"


class NoSuchPoll(RoomError):
    """The poll is unknown."""

    code = "no_such_poll"


class PollClosed(RoomError):
    """The poll is closed."""

    code = "poll_closed"


class InvalidChoice(RoomError):
    """Poll choices out of range, repeated, or not exactly one on a single-choice poll."""

    code = "invalid_choice"


class NoRaisedHands(RoomError):
    """``hand.call_next`` with an empty queue."""

    code = "no_raised_hands"


class BreakoutsOpen(RoomError):
    """``breakout.open`` while breakout rooms are open: close them first."""

    code = "breakouts_open"


class NoSuchBreakout(RoomError):
    """The breakout room is not open."""

    code = "no_such_breakout"


class BreakoutFull(RoomError):
    """``breakout.choose`` of a room that already holds ``cap`` students (self-select)."""

    code = "breakout_full"


class BadField(RoomError):
    """A field's value is out of range (text empty or too long, too few options, ...)."""

    code = "bad_field"


class LimitReached(RoomError):
    """A room bound (docs/protocol.md, "Bounds") leaves no room: too many unanswered questions of
    one participant, a full Q&A, too many open polls, too many whiteboards."""

    code = "limit_reached"


class RoomLocked(RoomError):
    """The room is locked and this identity never joined it."""

    code = "room_locked"
    close_code = CloseCode.ROOM_LOCKED


class MustWait(RoomLocked):
    """The waiting room is on and this student never joined: they wait for staff to admit them.
    Signaling turns it into the ``waiting`` answer; where nobody can wait (a whiteboard) it is
    the ``room_locked`` refusal it derives from."""


class JoinDenied(RoomError):
    """Staff turned this identity away from the waiting room for the rest of the session."""

    code = "join_denied"
    close_code = CloseCode.FORBIDDEN


class InviteRevoked(RoomError):
    """Staff revoked the invite link this token came from, and the identity never joined."""

    code = "invite_revoked"
    close_code = CloseCode.FORBIDDEN


class SessionEnded(RoomError):
    """The session was ended; every join and command is refused."""

    code = "session_ended"
    close_code = CloseCode.SESSION_ENDED


class ParticipantRemoved(RoomError):
    """The identity was removed from this session."""

    code = "participant_removed"
    close_code = CloseCode.FORBIDDEN


ERROR_CLASSES: tuple[type[RoomError], ...] = (
    NotAllowed,
    ChatMuted,
    NoSuchParticipant,
    NoSuchQuestion,
    QuestionClosed,
    AlreadyVoted,
    NotVoted,
    NoSuchPoll,
    PollClosed,
    InvalidChoice,
    NoRaisedHands,
    BreakoutsOpen,
    NoSuchBreakout,
    BreakoutFull,
    BadField,
    LimitReached,
    RoomLocked,
    MustWait,
    JoinDenied,
    InviteRevoked,
    SessionEnded,
    ParticipantRemoved,
)

ERROR_CODES: frozenset[str] = frozenset(cls.code for cls in ERROR_CLASSES)
