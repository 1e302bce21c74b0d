"""The waiting room's rules (docs/protocol.md, "Waiting room"): staff turn it on and off and
admit or turn away who waits; a join that must wait knocks, and leaves when its last waiting
connection closes.

Who must wait is :func:`must_wait`; :func:`rooms.admit` raises :class:`rooms.MustWait` for them,
and signaling then proposes :class:`rooms.WaitingKnock` for the connection and keeps it open.
"""

from rooms.bounds import WAITING_MAX
from rooms.checks import require_staff
from rooms.commands import WaitingAdmit, WaitingDeny, WaitingRoom
from rooms.errors import JoinDenied, NoSuchParticipant, ParticipantRemoved, RoomLocked
from rooms.events import (
    Event,
    ParticipantAdmittedEvent,
    ParticipantDeniedEvent,
    ParticipantWaitingEvent,
    ParticipantWaitingLeftEvent,
    WaitingRoomSetEvent,
)
from rooms.participant import Participant
from rooms.state import RoomState


def must_wait(state: RoomState, participant: Participant) -> bool:
    """Whether ``participant`` waits to be admitted: the waiting room is on, they are a student,
    and they never joined (or were admitted to) this room."""
    return (
        state.waiting_room
        and not participant.is_staff
        and participant.identity not in state.participants
    )


def waiting_room(state: RoomState, actor: Participant, command: WaitingRoom) -> list[Event]:
    require_staff(actor, "turn the waiting room on or off")
    if state.waiting_room == command.enabled:
        return []
    return [WaitingRoomSetEvent(command.enabled, actor.identity)]


def waiting_admit(state: RoomState, actor: Participant, command: WaitingAdmit) -> list[Event]:
    """Admit one waiting student, or (``identity`` None) everyone waiting, first come first."""
    require_staff(actor, "admit from the waiting room")
    if command.identity is None:
        who = list(state.waiting.items())
    elif command.identity in state.waiting:
        who = [(command.identity, state.waiting[command.identity])]
    elif command.identity in state.participants:
        return []  # admitted already (by other staff at the same moment)
    else:
        raise NoSuchParticipant("nobody by that identity is waiting", "identity")
    return [ParticipantAdmittedEvent(identity, name, actor.identity) for identity, name in who]


def waiting_deny(state: RoomState, actor: Participant, command: WaitingDeny) -> list[Event]:
    require_staff(actor, "turn someone away from the waiting room")
    if command.identity in state.denied:
        return []
    if command.identity not in state.waiting:
        raise NoSuchParticipant("nobody by that identity is waiting", "identity")
    return [ParticipantDeniedEvent(command.identity, actor.identity)]


def waiting_knock(state: RoomState, actor: Participant) -> list[Event]:
    """The actor enters the waiting room; nothing when they wait already or may enter now.

    Raises:
        ParticipantRemoved, JoinDenied: the actor was removed or turned away.
        RoomLocked: the waiting room is full (:data:`rooms.bounds.WAITING_MAX`).
    """
    if actor.identity in state.removed:
        raise ParticipantRemoved("you were removed from this session")
    if actor.identity in state.denied:
        raise JoinDenied("the teacher did not let you in to this class")
    if actor.identity in state.waiting or not must_wait(state, actor):
        return []
    if len(state.waiting) >= WAITING_MAX:
        raise RoomLocked("the waiting room is full; try again later")
    return [ParticipantWaitingEvent(actor.identity, actor.name)]


def waiting_leave(state: RoomState, actor: Participant) -> list[Event]:
    if actor.identity not in state.waiting:
        return []
    return [ParticipantWaitingLeftEvent(actor.identity)]
