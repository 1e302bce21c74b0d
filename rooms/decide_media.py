"""The media rules of :func:`rooms.decide`: who sets the media mode, mutes, permits and
spotlights (the breakout-room rules are in :mod:`rooms.decide_breakout`).

Each function checks one command against the state and returns its events, or raises a
:class:`rooms.RoomError` (docs/protocol.md, "Commands and the events they cause").
"""

from rooms.checks import known_participant, require_staff
from rooms.commands import (
    MediaMode,
    MediaMute,
    MediaPermit,
    MediaSpotlight,
)
from rooms.errors import BadField, NotAllowed
from rooms.events import (
    Event,
    MediaModeChangedEvent,
    MediaMutedEvent,
    MediaPermittedEvent,
    MediaSpotlightedEvent,
)
from rooms.media import MODES, SOURCES
from rooms.participant import Participant
from rooms.roles import Role
from rooms.state import RoomState


def media_mode(state: RoomState, actor: Participant, command: MediaMode) -> list[Event]:
    require_staff(actor, "set the media mode")
    if command.mode not in MODES:
        raise BadField(f"mode is one of {', '.join(MODES)}", "mode")
    if state.media_mode == command.mode:
        return []
    return [MediaModeChangedEvent(command.mode, actor.identity)]


def media_mute(state: RoomState, actor: Participant, command: MediaMute) -> list[Event]:
    require_staff(actor, "mute media")
    if command.identity is not None:
        target = known_participant(state, command.identity, "identity")
        if target.role is Role.TEACHER:
            raise NotAllowed("nobody mutes the teacher", "identity")
        if target.role is Role.ASSISTANT and actor.role is not Role.TEACHER:
            raise NotAllowed("only the teacher mutes an assistant", "identity")
    if command.source not in SOURCES:
        raise BadField(f"source is one of {', '.join(SOURCES)}", "source")
    if command.identity is not None:
        changes = command.muted != ((command.identity, command.source) in state.media_muted)
    elif command.muted:
        changes = command.source not in state.media_muted_all
    else:
        changes = command.source in state.media_muted_all or bool(
            state.student_media_mutes(command.source)
        )
    if not changes:
        return []
    return [MediaMutedEvent(command.identity, command.source, command.muted, actor.identity)]


def media_permit(state: RoomState, actor: Participant, command: MediaPermit) -> list[Event]:
    require_staff(actor, "permit students to publish")
    target = known_participant(state, command.identity, "identity")
    if target.is_staff:
        raise NotAllowed("staff publish without permission", "identity")
    if (target.identity in state.media_permitted) == command.allowed:
        return []
    return [MediaPermittedEvent(target.identity, command.allowed, actor.identity)]


def media_spotlight(state: RoomState, actor: Participant, command: MediaSpotlight) -> list[Event]:
    require_staff(actor, "set the spotlight")
    if command.identity is not None:
        known_participant(state, command.identity, "identity")
    if state.spotlight == command.identity:
        return []
    return [MediaSpotlightedEvent(command.identity, actor.identity)]
