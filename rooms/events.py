"""The room's events, one dataclass per event type of docs/protocol.md.

An event's fields are exactly its wire ``data`` fields, in the protocol's order, except
``ChatMessageEvent.sender``, which is ``from`` on the wire (a Python keyword). Lists on the wire
are tuples here; roles are :class:`Role`. :meth:`Event.to_data` gives the msgpack-ready ``data``
map and :func:`event_from_data` reads one back. A :class:`Record` is one entry of the room's log.

The events scoped to a place (chat, Q&A, hands) carry ``room``: the breakout room's name, or
None for the main room; entries written before breakout rooms had no ``room`` and read as None.

Event classes end in ``Event`` because several wire names are also error names (``poll_closed``,
``room_locked``, ``session_ended``, ...).
"""

import types
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, ClassVar, Self, Union, get_args, get_origin, get_type_hints

from rooms.roles import Role


class UnknownEvent(ValueError):
    """An event type that no class here implements."""


class MalformedEvent(ValueError):
    """An event's ``data`` lacks a field or holds a value of the wrong type."""


@dataclass(frozen=True, slots=True)
class Event:
    """Base of every event; ``type`` is the wire type (the ``event`` frame's ``type``).

    ``wire_names`` maps a field name to its ``data`` key where the two differ.
    """

    type: ClassVar[str]
    wire_names: ClassVar[Mapping[str, str]] = {}

    def to_data(self) -> dict[str, Any]:
        """The event's ``data`` map: wire keys, lists for tuples, plain strings for roles."""
        return {
            self.wire_names.get(f.name, f.name): _to_wire(getattr(self, f.name))
            for f in fields(self)
        }

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Self:
        """Build the event from its ``data`` map; unknown keys are ignored.

        Raises:
            MalformedEvent: a field is missing or has the wrong type.
        """
        hints = _field_hints(cls)
        values: dict[str, Any] = {}
        for f in fields(cls):
            key = cls.wire_names.get(f.name, f.name)
            if key not in data:
                if f.default is MISSING and f.default_factory is MISSING:
                    raise MalformedEvent(f"{cls.type}: missing {key!r}")
                continue
            values[f.name] = _from_wire(hints[f.name], data[key], f"{cls.type}.{key}")
        return cls(**values)


def _to_wire(value: object) -> object:
    if isinstance(value, Role):
        return value.value
    if isinstance(value, tuple):
        return [_to_wire(item) for item in value]
    if isinstance(value, dict):
        return {key: _to_wire(item) for key, item in value.items()}
    return value


_ROLE_VALUES = frozenset(role.value for role in Role)
_HINTS: dict[type[Event], dict[str, Any]] = {}


def _field_hints(cls: type[Event]) -> dict[str, Any]:
    hints = _HINTS.get(cls)
    if hints is None:
        hints = _HINTS[cls] = get_type_hints(cls)
    return hints


def _from_wire(hint: Any, value: object, where: str) -> Any:
    origin = get_origin(hint)
    if origin is Union or origin is types.UnionType:
        if value is None and types.NoneType in get_args(hint):
            return None
        (inner,) = (arg for arg in get_args(hint) if arg is not types.NoneType)
        return _from_wire(inner, value, where)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise MalformedEvent(f"{where}: expected a list, got {type(value).__name__}")
        item_hint = get_args(hint)[0]
        return tuple(_from_wire(item_hint, item, where) for item in value)
    if origin is dict:
        if not isinstance(value, Mapping):
            raise MalformedEvent(f"{where}: expected a map, got {type(value).__name__}")
        key_hint, value_hint = get_args(hint)
        return {
            _from_wire(key_hint, key, where): _from_wire(value_hint, item, where)
            for key, item in value.items()
        }
    if hint is Role:
        if isinstance(value, str) and value in _ROLE_VALUES:
            return Role(value)
        raise MalformedEvent(f"{where}: unknown role {value!r}")
    # bool is a subclass of int; an int field must not accept True.
    if hint is int and isinstance(value, bool):
        raise MalformedEvent(f"{where}: expected int, got bool")
    if isinstance(hint, type) and isinstance(value, hint):
        return value
    raise MalformedEvent(f"{where}: expected {hint!r}, got {type(value).__name__}")


@dataclass(frozen=True, slots=True)
class ParticipantJoinedEvent(Event):
    """An identity joined the room for the first time (or with a new name or role)."""

    type: ClassVar[str] = "participant.joined"
    identity: str
    name: str
    role: Role


@dataclass(frozen=True, slots=True)
class ChatMessageEvent(Event):
    """A chat message; ``thread`` None is room-wide, else it names the private thread's student.

    A room-wide message belongs to ``room``: the breakout room it was written in, or the main
    room (None). A ``broadcast`` (staff to every room at once) has ``room`` None and reaches
    everyone. Private threads have ``room`` None wherever their student is.
    """

    type: ClassVar[str] = "chat.message"
    wire_names: ClassVar[Mapping[str, str]] = {"sender": "from"}
    sender: str
    name: str
    role: Role
    text: str
    thread: str | None
    room: str | None = None
    broadcast: bool = False


@dataclass(frozen=True, slots=True)
class HandRaisedEvent(Event):
    """A student raised their hand; it joins the end of the queue."""

    type: ClassVar[str] = "hand.raised"
    identity: str
    name: str
    room: str | None = None


@dataclass(frozen=True, slots=True)
class HandLoweredEvent(Event):
    """``identity``'s hand went down, lowered by ``by``."""

    type: ClassVar[str] = "hand.lowered"
    identity: str
    by: str
    room: str | None = None


@dataclass(frozen=True, slots=True)
class HandCalledEvent(Event):
    """Staff ``by`` called the first hand in the queue; it goes down."""

    type: ClassVar[str] = "hand.called"
    identity: str
    name: str
    by: str
    room: str | None = None


@dataclass(frozen=True, slots=True)
class HandsClearedEvent(Event):
    """Staff ``by`` lowered every hand."""

    type: ClassVar[str] = "hands.cleared"
    by: str


@dataclass(frozen=True, slots=True)
class QuestionAskedEvent(Event):
    """A question entered the Q&A; ``question_id`` counts from 1 per room."""

    type: ClassVar[str] = "question.asked"
    question_id: int
    author: str
    name: str
    text: str
    room: str | None = None


@dataclass(frozen=True, slots=True)
class QuestionUpvotedEvent(Event):
    """``identity`` upvoted the question."""

    type: ClassVar[str] = "question.upvoted"
    question_id: int
    identity: str
    room: str | None = None


@dataclass(frozen=True, slots=True)
class QuestionUnvotedEvent(Event):
    """``identity`` took back their upvote."""

    type: ClassVar[str] = "question.unvoted"
    question_id: int
    identity: str
    room: str | None = None


@dataclass(frozen=True, slots=True)
class QuestionAnsweredEvent(Event):
    """Staff ``by`` marked the question answered."""

    type: ClassVar[str] = "question.answered"
    question_id: int
    by: str
    room: str | None = None


@dataclass(frozen=True, slots=True)
class QuestionDismissedEvent(Event):
    """Staff ``by`` dismissed the question."""

    type: ClassVar[str] = "question.dismissed"
    question_id: int
    by: str
    room: str | None = None


@dataclass(frozen=True, slots=True)
class QuestionPinnedEvent(Event):
    """Staff ``by`` pinned (``pinned`` True) or unpinned the question."""

    type: ClassVar[str] = "question.pinned"
    question_id: int
    pinned: bool
    by: str
    room: str | None = None


@dataclass(frozen=True, slots=True)
class PollOpenedEvent(Event):
    """Staff ``by`` opened a poll; ``poll_id`` counts from 1 per room."""

    type: ClassVar[str] = "poll.opened"
    poll_id: int
    question: str
    options: tuple[str, ...]
    multiple: bool
    by: str


@dataclass(frozen=True, slots=True)
class PollAnsweredEvent(Event):
    """Student ``identity`` answered (0-based option indices, ascending); replaces their last."""

    type: ClassVar[str] = "poll.answered"
    poll_id: int
    identity: str
    choices: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class PollClosedEvent(Event):
    """Staff ``by`` closed the poll; ``tally`` is votes per option, ``voters`` students who
    answered."""

    type: ClassVar[str] = "poll.closed"
    poll_id: int
    tally: tuple[int, ...]
    voters: int
    by: str


@dataclass(frozen=True, slots=True)
class ChatMutedEvent(Event):
    """Staff ``by`` muted or unmuted one student's chat, or every student's (``identity`` None)."""

    type: ClassVar[str] = "chat.muted"
    identity: str | None
    muted: bool
    by: str


@dataclass(frozen=True, slots=True)
class ParticipantRemovedEvent(Event):
    """Staff ``by`` removed ``identity`` for the rest of the session."""

    type: ClassVar[str] = "participant.removed"
    identity: str
    reason: str
    by: str


@dataclass(frozen=True, slots=True)
class WaitingRoomSetEvent(Event):
    """Staff ``by`` turned the waiting room on (``enabled``) or off."""

    type: ClassVar[str] = "room.waiting_room_set"
    enabled: bool
    by: str


@dataclass(frozen=True, slots=True)
class ParticipantWaitingEvent(Event):
    """Student ``identity`` (display name ``name``) entered the waiting room."""

    type: ClassVar[str] = "participant.waiting"
    identity: str
    name: str


@dataclass(frozen=True, slots=True)
class ParticipantWaitingLeftEvent(Event):
    """Waiting student ``identity`` went away (their last waiting connection closed)."""

    type: ClassVar[str] = "participant.waiting_left"
    identity: str


@dataclass(frozen=True, slots=True)
class ParticipantAdmittedEvent(Event):
    """Staff ``by`` admitted waiting student ``identity`` (``name``): they may enter."""

    type: ClassVar[str] = "participant.admitted"
    identity: str
    name: str
    by: str


@dataclass(frozen=True, slots=True)
class ParticipantDeniedEvent(Event):
    """Staff ``by`` turned waiting student ``identity`` away for the rest of the session."""

    type: ClassVar[str] = "participant.denied"
    identity: str
    by: str


@dataclass(frozen=True, slots=True)
class ParticipantLeftEvent(Event):
    """``identity`` left the class (the ``leave`` command: the Leave button, not a dropped
    connection); a later join of theirs records ``participant.joined`` again."""

    type: ClassVar[str] = "participant.left"
    identity: str


@dataclass(frozen=True, slots=True)
class InviteRevokedEvent(Event):
    """Staff ``by`` revoked invite link ``invite_id``: it admits no new identity."""

    type: ClassVar[str] = "invite.revoked"
    invite_id: str
    by: str


@dataclass(frozen=True, slots=True)
class RoomNamedEvent(Event):
    """The class got its display name ``class_name``, from the access token of staff ``by``
    (docs/decisions/0018-class-name-waiting-room.md). Recorded once per room."""

    type: ClassVar[str] = "room.named"
    class_name: str
    by: str


@dataclass(frozen=True, slots=True)
class RoomLockedEvent(Event):
    """Staff ``by`` locked (``locked`` True) or unlocked the room."""

    type: ClassVar[str] = "room.locked"
    locked: bool
    by: str


@dataclass(frozen=True, slots=True)
class BoardLockedEvent(Event):
    """Staff ``by`` made whiteboard ``board`` read-only for students (``locked``) or writable."""

    type: ClassVar[str] = "board.locked"
    board: str
    locked: bool
    by: str


@dataclass(frozen=True, slots=True)
class BoardClearedEvent(Event):
    """Staff ``by`` cleared whiteboard ``board``; the whiteboard service deletes its records."""

    type: ClassVar[str] = "board.cleared"
    board: str
    by: str


@dataclass(frozen=True, slots=True)
class BoardSnapshotSavedEvent(Event):
    """Staff ``by`` saved a snapshot of whiteboard ``board``; the record's id names it."""

    type: ClassVar[str] = "board.snapshot_saved"
    board: str
    by: str


@dataclass(frozen=True, slots=True)
class MediaModeChangedEvent(Event):
    """Staff ``by`` set the media ``mode``: ``"lecture"`` or ``"discussion"``."""

    type: ClassVar[str] = "media.mode_changed"
    mode: str
    by: str


@dataclass(frozen=True, slots=True)
class MediaMutedEvent(Event):
    """Staff ``by`` muted or unmuted ``source`` of one participant, or of every student
    (``identity`` None; unmuting every student also lifts students' own mutes of ``source``)."""

    type: ClassVar[str] = "media.muted"
    identity: str | None
    source: str
    muted: bool
    by: str


@dataclass(frozen=True, slots=True)
class MediaPermittedEvent(Event):
    """Staff ``by`` let student ``identity`` publish (``allowed``) or took that back."""

    type: ClassVar[str] = "media.permitted"
    identity: str
    allowed: bool
    by: str


@dataclass(frozen=True, slots=True)
class MediaSpotlightedEvent(Event):
    """Staff ``by`` put ``identity`` in the spotlight, or cleared it (None)."""

    type: ClassVar[str] = "media.spotlighted"
    identity: str | None
    by: str


@dataclass(frozen=True, slots=True)
class StageChangedEvent(Event):
    """Staff ``by`` put ``view`` (``"video"`` or ``"board"``) on every page's stage."""

    type: ClassVar[str] = "stage.changed"
    view: str
    by: str


@dataclass(frozen=True, slots=True)
class BreakoutOpenedEvent(Event):
    """Staff ``by`` opened breakout round ``round`` (1, 2, ... per room): ``rooms`` (names, in
    order) with their whiteboards ``boards`` (``br<round>-<i>``, same order).

    ``members`` is the whole initial assignment (identity -> room; whoever is absent stays in
    the main room), automatic assignment included, so replaying the log gives the same rooms.
    ``duration_s`` (None: no timer) counts from the record's ``ts``; ``warn_s`` is how long
    before the end clients warn; with ``self_select`` students pick their room (``cap``: at most
    that many students per room, None: no cap). A log entry older than rounds has ``round`` 0;
    the fold numbers it.
    """

    type: ClassVar[str] = "breakout.opened"
    rooms: tuple[str, ...]
    by: str
    round: int = 0
    boards: tuple[str, ...] = ()
    members: dict[str, str] = field(default_factory=dict)
    duration_s: int | None = None
    warn_s: int = 60
    self_select: bool = False
    cap: int | None = None


@dataclass(frozen=True, slots=True)
class BreakoutAssignedEvent(Event):
    """Staff ``by`` moved several participants at once: ``members`` maps each identity that
    changes place to its breakout room, or to the main room (None)."""

    type: ClassVar[str] = "breakout.assigned"
    members: dict[str, str | None]
    by: str


@dataclass(frozen=True, slots=True)
class BreakoutMovedEvent(Event):
    """``by`` moved ``identity`` to breakout ``room``, or to the main room (None); ``by`` is
    ``identity`` when a student chose their room (self-select) or staff visit a room."""

    type: ClassVar[str] = "breakout.moved"
    identity: str
    room: str | None
    by: str


@dataclass(frozen=True, slots=True)
class BreakoutTimerSetEvent(Event):
    """Staff ``by`` set the breakouts to close ``remaining_s`` seconds after this record's
    ``ts``, or removed the timer (None)."""

    type: ClassVar[str] = "breakout.timer_set"
    remaining_s: int | None
    by: str


@dataclass(frozen=True, slots=True)
class BreakoutHelpAskedEvent(Event):
    """Student ``identity`` in breakout ``room`` asked the staff for help (the help queue)."""

    type: ClassVar[str] = "breakout.help_asked"
    identity: str
    room: str


@dataclass(frozen=True, slots=True)
class BreakoutHelpClearedEvent(Event):
    """``by`` (staff, or the student themself) took ``identity``'s help request off the queue."""

    type: ClassVar[str] = "breakout.help_cleared"
    identity: str
    by: str


@dataclass(frozen=True, slots=True)
class BreakoutBoardsSharedEvent(Event):
    """Staff ``by`` shared (``shared``) the last round's boards with students, or stopped."""

    type: ClassVar[str] = "breakout.boards_shared"
    shared: bool
    by: str


@dataclass(frozen=True, slots=True)
class BreakoutClosedEvent(Event):
    """Breakout round ``round`` closed: everyone is back in the main room. ``reason`` is
    ``"staff"`` (closed by ``by``) or ``"timer"`` (``by`` None: the countdown reached zero).
    A log entry older than rounds has ``round`` 0 (the open round)."""

    type: ClassVar[str] = "breakout.closed"
    by: str | None
    round: int = 0
    reason: str = "staff"


@dataclass(frozen=True, slots=True)
class SessionEndedEvent(Event):
    """The teacher ``by`` ended the session."""

    type: ClassVar[str] = "session.ended"
    reason: str
    by: str


EVENTS: dict[str, type[Event]] = {
    cls.type: cls
    for cls in (
        ParticipantJoinedEvent,
        ChatMessageEvent,
        HandRaisedEvent,
        HandLoweredEvent,
        HandCalledEvent,
        HandsClearedEvent,
        QuestionAskedEvent,
        QuestionUpvotedEvent,
        QuestionUnvotedEvent,
        QuestionAnsweredEvent,
        QuestionDismissedEvent,
        QuestionPinnedEvent,
        PollOpenedEvent,
        PollAnsweredEvent,
        PollClosedEvent,
        ChatMutedEvent,
        ParticipantRemovedEvent,
        RoomLockedEvent,
        RoomNamedEvent,
        WaitingRoomSetEvent,
        ParticipantWaitingEvent,
        ParticipantWaitingLeftEvent,
        ParticipantAdmittedEvent,
        ParticipantDeniedEvent,
        InviteRevokedEvent,
        ParticipantLeftEvent,
        BoardLockedEvent,
        BoardClearedEvent,
        BoardSnapshotSavedEvent,
        MediaModeChangedEvent,
        MediaMutedEvent,
        MediaPermittedEvent,
        MediaSpotlightedEvent,
        StageChangedEvent,
        BreakoutOpenedEvent,
        BreakoutAssignedEvent,
        BreakoutMovedEvent,
        BreakoutTimerSetEvent,
        BreakoutHelpAskedEvent,
        BreakoutHelpClearedEvent,
        BreakoutBoardsSharedEvent,
        BreakoutClosedEvent,
        SessionEndedEvent,
    )
}


def event_from_data(type_: str, data: Mapping[str, Any]) -> Event:
    """Build the event of wire type ``type_`` from its ``data`` map.

    Raises:
        UnknownEvent: ``type_`` names no event.
        MalformedEvent: ``data`` lacks a field or holds a wrongly typed value.
    """
    cls = EVENTS.get(type_)
    if cls is None:
        raise UnknownEvent(f"unknown event type {type_!r}")
    return cls.from_data(data)


@dataclass(frozen=True, slots=True)
class Record:
    """One entry of a room's log: event ``id`` (from 1, no gaps), ``ts`` (Unix epoch ms)."""

    id: int
    ts: int
    event: Event
