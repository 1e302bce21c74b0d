"""Who receives an event: the "who receives the event" column of docs/protocol.md.

Signaling fans each event out once per node and asks :meth:`Audience.admits` per member, with the
member's current place (the breakout room they are in, None for the main room); resume and
snapshots apply the same rule, so a participant never sees a private thread, a poll answer that
is not theirs, or another breakout room's chat, questions and hands.
"""

from dataclasses import dataclass
from typing import ClassVar, Literal

from rooms.events import (
    BoardSnapshotSavedEvent,
    BreakoutAssignedEvent,
    BreakoutClosedEvent,
    BreakoutHelpAskedEvent,
    BreakoutHelpClearedEvent,
    BreakoutMovedEvent,
    BreakoutOpenedEvent,
    ChatMessageEvent,
    Event,
    HandCalledEvent,
    HandLoweredEvent,
    HandRaisedEvent,
    InviteRevokedEvent,
    ParticipantAdmittedEvent,
    ParticipantDeniedEvent,
    ParticipantJoinedEvent,
    ParticipantLeftEvent,
    ParticipantRemovedEvent,
    ParticipantWaitingEvent,
    ParticipantWaitingLeftEvent,
    PollAnsweredEvent,
    QuestionAnsweredEvent,
    QuestionAskedEvent,
    QuestionDismissedEvent,
    QuestionPinnedEvent,
    QuestionUnvotedEvent,
    QuestionUpvotedEvent,
)
from rooms.participant import Participant

AudienceKind = Literal["all", "staff", "staff_and", "room"]


@dataclass(frozen=True, slots=True)
class Audience:
    """Everyone (``all``), the staff (``staff``), the staff and one identity (``staff_and``), or
    the staff and everyone whose current place is ``room`` (``room``: a breakout room's name, or
    None for the main room)."""

    kind: AudienceKind
    identity: str | None = None
    room: str | None = None

    ALL: ClassVar["Audience"]
    STAFF: ClassVar["Audience"]

    @classmethod
    def staff_and(cls, identity: str) -> "Audience":
        """The staff and the participant ``identity``."""
        return cls("staff_and", identity)

    @classmethod
    def in_room(cls, room: str | None) -> "Audience":
        """The staff and the participants now in breakout ``room`` (None: the main room)."""
        return cls("room", room=room)

    def admits(self, participant: Participant, *, place: str | None = None) -> bool:
        """True when ``participant`` may receive an event with this audience.

        ``place`` is the participant's current place (their breakout room, None for the main
        room); only the ``room`` kind reads it.
        """
        if self.kind == "all" or participant.is_staff:
            return True
        if self.kind == "room":
            return place == self.room
        return self.kind == "staff_and" and participant.identity == self.identity


Audience.ALL = Audience("all")
Audience.STAFF = Audience("staff")


def audience_of(event: Event) -> Audience:
    """The audience of ``event``.

    ``participant.joined``, ``participant.left``, ``board.snapshot_saved``, ``invite.revoked``
    and the waiting
    room's ``participant.waiting``, ``participant.waiting_left`` and ``participant.denied`` go
    to the staff; ``participant.admitted`` to the staff and the student admitted; a private
    ``chat.message`` to the staff and the thread's student; ``poll.answered``,
    ``breakout.help_asked`` and ``breakout.help_cleared`` to the staff and the student they
    name; a room-wide ``chat.message`` (not a broadcast) and the Q&A and hand events to the
    staff and the members of their ``room`` (:meth:`Audience.in_room`); every other event to
    everyone.
    """
    match event:
        case (
            ParticipantJoinedEvent()
            | BoardSnapshotSavedEvent()
            | ParticipantWaitingEvent()
            | ParticipantWaitingLeftEvent()
            | ParticipantDeniedEvent()
            | InviteRevokedEvent()
            | ParticipantLeftEvent()
        ):
            return Audience.STAFF
        case ParticipantAdmittedEvent(identity=identity):
            return Audience.staff_and(identity)
        case ChatMessageEvent(thread=str(thread)):
            return Audience.staff_and(thread)
        case ChatMessageEvent(broadcast=True):
            return Audience.ALL
        case ChatMessageEvent(room=room):
            return Audience.in_room(room)
        case PollAnsweredEvent(identity=identity):
            return Audience.staff_and(identity)
        case (
            BreakoutHelpAskedEvent(identity=identity) | BreakoutHelpClearedEvent(identity=identity)
        ):
            return Audience.staff_and(identity)
        case (
            QuestionAskedEvent(room=room)
            | QuestionUpvotedEvent(room=room)
            | QuestionUnvotedEvent(room=room)
            | QuestionAnsweredEvent(room=room)
            | QuestionDismissedEvent(room=room)
            | QuestionPinnedEvent(room=room)
            | HandRaisedEvent(room=room)
            | HandLoweredEvent(room=room)
            | HandCalledEvent(room=room)
        ):
            return Audience.in_room(room)
    return Audience.ALL


def room_changes(event: Event) -> frozenset[str] | None:
    """The identities whose place ``event`` changes (an empty set: nobody's), or None when it
    may change anyone's (``breakout.opened``, ``breakout.closed``).

    Signaling sends each local member whose place changed a ``view`` frame after folding such
    an event, and answers a resume whose missed range changes the resumer's place with a
    ``welcome`` (docs/protocol.md, "Breakout rooms").
    """
    match event:
        case BreakoutOpenedEvent() | BreakoutClosedEvent():
            return None
        case BreakoutAssignedEvent(members=members):
            return frozenset(members)
        case BreakoutMovedEvent(identity=identity) | ParticipantRemovedEvent(identity=identity):
            return frozenset((identity,))
    return frozenset()
