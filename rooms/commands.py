"""The classroom commands a client sends, one dataclass per wire type.

Field names and types follow the command table of docs/protocol.md ("Commands and the events they
cause"). The transport messages ``join`` and ``ping`` belong to ``signaling``; ``leave`` is here too
because leaving lowers a raised hand. Lists on the wire are tuples here. Fields typed ``X | None``
may be absent on the wire and default to None; ``reason`` defaults to "".

Values are not range-checked here: :func:`rooms.decide` does that and raises ``BadField``.
"""

from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True, slots=True)
class Command:
    """Base of every command; ``type`` is the wire type (the frame's ``t``)."""

    type: ClassVar[str]


@dataclass(frozen=True, slots=True)
class ChatSend(Command):
    """Send ``text`` (1-2000 chars) to the room (``to`` None) or to a private thread.

    A student's ``to`` is None or ``"staff"``; staff's ``to`` is None or a student's identity.
    A room-wide message goes to the sender's place; staff may name an open breakout ``room``
    (or the main room: ``room`` None is their own place).
    """

    type: ClassVar[str] = "chat.send"
    text: str
    to: str | None = None
    room: str | None = None


@dataclass(frozen=True, slots=True)
class HandRaise(Command):
    """A student raises their hand."""

    type: ClassVar[str] = "hand.raise"


@dataclass(frozen=True, slots=True)
class HandLower(Command):
    """Lower a hand: one's own (``identity`` None or own), or anyone's for staff."""

    type: ClassVar[str] = "hand.lower"
    identity: str | None = None


@dataclass(frozen=True, slots=True)
class HandCallNext(Command):
    """Staff call the first raised hand in the queue; that hand goes down."""

    type: ClassVar[str] = "hand.call_next"


@dataclass(frozen=True, slots=True)
class HandLowerAll(Command):
    """Staff lower every raised hand."""

    type: ClassVar[str] = "hand.lower_all"


@dataclass(frozen=True, slots=True)
class QuestionAsk(Command):
    """Ask a question (``text`` 1-500 chars) in the Q&A of one's place; staff may name an open
    breakout ``room``."""

    type: ClassVar[str] = "question.ask"
    text: str
    room: str | None = None


@dataclass(frozen=True, slots=True)
class QuestionUpvote(Command):
    """Upvote a question, once per participant."""

    type: ClassVar[str] = "question.upvote"
    question_id: int


@dataclass(frozen=True, slots=True)
class QuestionUnvote(Command):
    """Take back one's upvote."""

    type: ClassVar[str] = "question.unvote"
    question_id: int


@dataclass(frozen=True, slots=True)
class QuestionAnswer(Command):
    """Staff mark a question answered."""

    type: ClassVar[str] = "question.answer"
    question_id: int


@dataclass(frozen=True, slots=True)
class QuestionDismiss(Command):
    """Staff dismiss a question; it leaves the Q&A."""

    type: ClassVar[str] = "question.dismiss"
    question_id: int


@dataclass(frozen=True, slots=True)
class QuestionPin(Command):
    """Staff pin (``pinned`` True) or unpin a question."""

    type: ClassVar[str] = "question.pin"
    question_id: int
    pinned: bool


@dataclass(frozen=True, slots=True)
class PollOpen(Command):
    """Staff open a poll: ``question`` 1-300 chars, 2-10 ``options`` of 1-100 chars each."""

    type: ClassVar[str] = "poll.open"
    question: str
    options: tuple[str, ...]
    multiple: bool


@dataclass(frozen=True, slots=True)
class PollAnswer(Command):
    """A student answers an open poll; ``choices`` are 0-based option indices.

    A single-choice poll takes exactly one; a multiple-choice poll one or more, distinct.
    A new answer replaces the old.
    """

    type: ClassVar[str] = "poll.answer"
    poll_id: int
    choices: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class PollClose(Command):
    """Staff close a poll, once; its tally is published."""

    type: ClassVar[str] = "poll.close"
    poll_id: int


@dataclass(frozen=True, slots=True)
class ChatMute(Command):
    """Staff mute (``muted`` True) or unmute one student's chat, or every student's (``identity``
    None)."""

    type: ClassVar[str] = "chat.mute"
    muted: bool
    identity: str | None = None


@dataclass(frozen=True, slots=True)
class ParticipantRemove(Command):
    """Staff remove a participant for the rest of the session (``reason`` 0-200 chars).

    Only the teacher removes an assistant; nobody removes the teacher.
    """

    type: ClassVar[str] = "participant.remove"
    identity: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class RoomLock(Command):
    """Staff lock the room (new identities are refused) or unlock it."""

    type: ClassVar[str] = "room.lock"
    locked: bool


@dataclass(frozen=True, slots=True)
class WaitingRoom(Command):
    """Staff turn the waiting room ("ask to join") on or off: while it is on, a student who never
    joined waits for staff to admit them instead of entering (docs/protocol.md, "Waiting room")."""

    type: ClassVar[str] = "room.waiting_room"
    enabled: bool


@dataclass(frozen=True, slots=True)
class WaitingAdmit(Command):
    """Staff admit the waiting student ``identity`` (None: everyone waiting)."""

    type: ClassVar[str] = "waiting.admit"
    identity: str | None = None


@dataclass(frozen=True, slots=True)
class WaitingDeny(Command):
    """Staff turn the waiting student ``identity`` away for the rest of the session."""

    type: ClassVar[str] = "waiting.deny"
    identity: str


@dataclass(frozen=True, slots=True)
class InviteRevoke(Command):
    """Staff revoke invite link ``invite_id`` (1-64 characters): it admits no new identity."""

    type: ClassVar[str] = "invite.revoke"
    invite_id: str


@dataclass(frozen=True, slots=True)
class WaitingKnock(Command):
    """Internal (signaling proposes it for a join that must wait): the actor enters the waiting
    room. It changes nothing when the actor waits already or may enter now."""

    type: ClassVar[str] = "waiting.knock"


@dataclass(frozen=True, slots=True)
class WaitingLeave(Command):
    """Internal (signaling proposes it when the last waiting connection of the actor closed):
    the actor leaves the waiting room. It changes nothing when the actor is not waiting."""

    type: ClassVar[str] = "waiting.leave"


@dataclass(frozen=True, slots=True)
class BoardLock(Command):
    """Staff make whiteboard ``board`` read-only for students (``locked`` True) or writable."""

    type: ClassVar[str] = "board.lock"
    board: str
    locked: bool


@dataclass(frozen=True, slots=True)
class BoardClear(Command):
    """Staff clear whiteboard ``board``: every record on it is deleted."""

    type: ClassVar[str] = "board.clear"
    board: str


@dataclass(frozen=True, slots=True)
class BoardSnapshot(Command):
    """Staff save a snapshot of whiteboard ``board`` (downloadable by staff over HTTP)."""

    type: ClassVar[str] = "board.snapshot"
    board: str


@dataclass(frozen=True, slots=True)
class MediaMode(Command):
    """Staff set the media ``mode``: ``"lecture"`` (only staff publish in the main room) or
    ``"discussion"`` (anyone with the ``can_publish`` grant publishes)."""

    type: ClassVar[str] = "media.mode"
    mode: str


@dataclass(frozen=True, slots=True)
class MediaMute(Command):
    """Staff mute (``muted`` True) or unmute one participant's ``source`` (``"camera"``,
    ``"microphone"`` or ``"screen"``), or every student's (``identity`` None).

    Nobody mutes the teacher; only the teacher mutes an assistant. A muted source is not forwarded
    by the SFU, and the participant cannot lift the mute.
    """

    type: ClassVar[str] = "media.mute"
    source: str
    muted: bool
    identity: str | None = None


@dataclass(frozen=True, slots=True)
class MediaPermit(Command):
    """Staff let a student publish (``allowed`` True) whatever the mode and their grant, or take
    that back."""

    type: ClassVar[str] = "media.permit"
    identity: str
    allowed: bool


@dataclass(frozen=True, slots=True)
class MediaSpotlight(Command):
    """Staff put a participant in the spotlight, or clear it (``identity`` None)."""

    type: ClassVar[str] = "media.spotlight"
    identity: str | None = None


@dataclass(frozen=True, slots=True)
class StageSet(Command):
    """Staff choose what every page shows on its stage: ``view`` ``"video"`` (the video grid) or
    ``"board"`` (the whiteboard). The choice is the main room's (docs/protocol.md, "The stage")."""

    type: ClassVar[str] = "stage.set"
    view: str


Assignment = dict[str, str]
"""identity -> breakout room name."""

AutoAssign = dict[str, tuple[tuple[str, ...], ...]]
"""``{apart: [[identity, identity], ...], together: [[identity, ...], ...]}``: the constraints of
an automatic assignment (:mod:`rooms.breakout_assign`); both keys optional."""


@dataclass(frozen=True, slots=True)
class BreakoutOpen(Command):
    """Staff open breakout ``rooms`` (1-50 distinct names of 1-64 characters, no control
    characters, not blank).

    ``members`` assigns identities to rooms; ``auto`` then assigns every other student, balanced
    at random, keeping its ``apart`` pairs in different rooms and ``together`` groups in one.
    ``duration_s`` (1-86400) starts a countdown, ``warn_s`` (0-3600, default 60) is the warning
    before it ends; with ``self_select`` students pick their room, at most ``cap`` (1-1000) per
    room. ``groups`` names a saved group set: the edge replaces it with its rooms and members
    before :func:`rooms.decide` sees the command.
    """

    type: ClassVar[str] = "breakout.open"
    rooms: tuple[str, ...] = ()
    members: Assignment | None = None
    auto: AutoAssign | None = None
    duration_s: int | None = None
    warn_s: int | None = None
    self_select: bool | None = None
    cap: int | None = None
    groups: str | None = None


@dataclass(frozen=True, slots=True)
class BreakoutAssign(Command):
    """Staff move many participants at once: ``members`` (identity -> room, None: the main
    room), or ``auto`` (assign the students now in the main room, as in :class:`BreakoutOpen`)."""

    type: ClassVar[str] = "breakout.assign"
    members: dict[str, str | None] | None = None
    auto: AutoAssign | None = None


@dataclass(frozen=True, slots=True)
class BreakoutMove(Command):
    """Staff move a participant to an open breakout ``room``, or back to the main room (None)."""

    type: ClassVar[str] = "breakout.move"
    identity: str
    room: str | None = None


@dataclass(frozen=True, slots=True)
class BreakoutChoose(Command):
    """A student picks their breakout ``room`` (or the main room, None) while self-select is on."""

    type: ClassVar[str] = "breakout.choose"
    room: str | None = None


@dataclass(frozen=True, slots=True)
class BreakoutTimer(Command):
    """Staff set the breakouts to close in ``remaining_s`` (1-86400) seconds, or remove the timer
    (None)."""

    type: ClassVar[str] = "breakout.timer"
    remaining_s: int | None = None


@dataclass(frozen=True, slots=True)
class BreakoutBroadcast(Command):
    """Staff send ``text`` (chat text rules) to the main room and every breakout room at once."""

    type: ClassVar[str] = "breakout.broadcast"
    text: str


@dataclass(frozen=True, slots=True)
class BreakoutHelp(Command):
    """A student in a breakout room asks the staff for help."""

    type: ClassVar[str] = "breakout.help"


@dataclass(frozen=True, slots=True)
class BreakoutHelpDone(Command):
    """Staff take ``identity``'s help request off the queue; a student withdraws their own
    (``identity`` None or their own)."""

    type: ClassVar[str] = "breakout.help_done"
    identity: str | None = None


@dataclass(frozen=True, slots=True)
class BreakoutShareBoards(Command):
    """Staff share the last closed round's boards with students (``shared``), or stop."""

    type: ClassVar[str] = "breakout.share_boards"
    shared: bool


@dataclass(frozen=True, slots=True)
class BreakoutClose(Command):
    """Staff close every breakout room; everyone is back in the main room."""

    type: ClassVar[str] = "breakout.close"


@dataclass(frozen=True, slots=True)
class BreakoutExpire(Command):
    """Internal (not a wire command; signaling proposes it): close breakout round ``round``
    because its timer, set to end at ``ends_at`` (epoch ms), ran out. It changes nothing unless
    that round is open and still ends at ``ends_at``, so nodes racing to propose it are safe."""

    type: ClassVar[str] = "breakout.expire"
    round: int
    ends_at: int


@dataclass(frozen=True, slots=True)
class SessionEnd(Command):
    """The teacher ends the session (``reason`` 0-200 chars)."""

    type: ClassVar[str] = "session.end"
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Leave(Command):
    """The participant leaves; their raised hand, if any, goes down."""

    type: ClassVar[str] = "leave"


#: The wire commands by type (:class:`BreakoutExpire`, :class:`WaitingKnock` and
#: :class:`WaitingLeave` are internal and not here).
COMMANDS: dict[str, type[Command]] = {
    cls.type: cls
    for cls in (
        ChatSend,
        HandRaise,
        HandLower,
        HandCallNext,
        HandLowerAll,
        QuestionAsk,
        QuestionUpvote,
        QuestionUnvote,
        QuestionAnswer,
        QuestionDismiss,
        QuestionPin,
        PollOpen,
        PollAnswer,
        PollClose,
        ChatMute,
        ParticipantRemove,
        RoomLock,
        WaitingRoom,
        WaitingAdmit,
        WaitingDeny,
        InviteRevoke,
        BoardLock,
        BoardClear,
        BoardSnapshot,
        MediaMode,
        MediaMute,
        MediaPermit,
        MediaSpotlight,
        StageSet,
        BreakoutOpen,
        BreakoutAssign,
        BreakoutMove,
        BreakoutChoose,
        BreakoutTimer,
        BreakoutBroadcast,
        BreakoutHelp,
        BreakoutHelpDone,
        BreakoutShareBoards,
        BreakoutClose,
        SessionEnd,
        Leave,
    )
}
