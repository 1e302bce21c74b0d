"""Who receives an event: the "who receives the event" column of docs/protocol.md.

Signaling fans each event out once per node and asks :meth:`Audience.admits` per member;
resume and snapshots apply the same rule, so a participant never sees a private thread or a poll
answer that is not theirs.
"""

from dataclasses import dataclass
from typing import ClassVar, Literal

from rooms.events import (
    BoardSnapshotSavedEvent,
    ChatMessageEvent,
    Event,
    ParticipantJoinedEvent,
    PollAnsweredEvent,
)
from rooms.participant import Participant

AudienceKind = Literal["all", "staff", "staff_and"]


@dataclass(frozen=True, slots=True)
class Audience:
    """Everyone (``all``), the staff (``staff``), or the staff and one identity (``staff_and``)."""

    kind: AudienceKind
    identity: str | None = None

    ALL: ClassVar["Audience"]
    STAFF: ClassVar["Audience"]

    @classmethod
    def staff_and(cls, identity: str) -> "Audience":
        """The staff and the participant ``identity``."""
        return cls("staff_and", identity)

    def admits(self, participant: Participant) -> bool:
        """True when ``participant`` may receive an event with this audience."""
        if self.kind == "all":
            return True
        return participant.is_staff or (
            self.kind == "staff_and" and participant.identity == self.identity
        )


Audience.ALL = Audience("all")
Audience.STAFF = Audience("staff")


def audience_of(event: Event) -> Audience:
    """The audience of ``event``.

    ``participant.joined`` and ``board.snapshot_saved`` go to the staff; a private
    ``chat.message`` to the staff and the thread's student; ``poll.answered`` to the staff and the
    student who answered; every other event to everyone.
    """
    match event:
        case ParticipantJoinedEvent() | BoardSnapshotSavedEvent():
            return Audience.STAFF
        case ChatMessageEvent(thread=str(thread)):
            return Audience.staff_and(thread)
        case PollAnsweredEvent(identity=identity):
            return Audience.staff_and(identity)
    return Audience.ALL
