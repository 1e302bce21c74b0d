"""The media and breakout-room rules of :func:`rooms.decide`: who sets the media mode, mutes,
permits and spotlights, and who opens breakout rooms and moves whom.

Each function checks one command against the state and returns its events, or raises a
:class:`rooms.RoomError` (docs/protocol.md, "Commands and the events they cause").
"""

from rooms.boards import is_board_name
from rooms.checks import known_participant, require_staff
from rooms.commands import (
    BreakoutMove,
    BreakoutOpen,
    MediaMode,
    MediaMute,
    MediaPermit,
    MediaSpotlight,
)
from rooms.errors import BadField, BreakoutsOpen, NoSuchBreakout, NotAllowed
from rooms.events import (
    BreakoutMovedEvent,
    BreakoutOpenedEvent,
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

BREAKOUTS_MAX = 50


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


def breakout_open(state: RoomState, actor: Participant, command: BreakoutOpen) -> list[Event]:
    require_staff(actor, "open breakout rooms")
    if state.breakouts:
        raise BreakoutsOpen("close the breakout rooms first")
    if not 1 <= len(command.rooms) <= BREAKOUTS_MAX:
        raise BadField(f"open 1 to {BREAKOUTS_MAX} breakout rooms", "rooms")
    if len(set(command.rooms)) != len(command.rooms):
        raise BadField("breakout room names are distinct", "rooms")
    # A breakout room's whiteboard is named after it, so its name is a board name.
    if not all(is_board_name(name) for name in command.rooms):
        raise BadField("a breakout room is 1-64 letters, digits, '_' or '-'", "rooms")
    return [BreakoutOpenedEvent(tuple(command.rooms), actor.identity)]


def breakout_move(state: RoomState, actor: Participant, command: BreakoutMove) -> list[Event]:
    require_staff(actor, "move participants between rooms")
    target = known_participant(state, command.identity, "identity")
    if target.is_staff and target.identity != actor.identity and actor.role is not Role.TEACHER:
        raise NotAllowed("only the teacher moves another member of staff", "identity")
    if command.room is not None and command.room not in state.breakouts:
        raise NoSuchBreakout(f"no open breakout room {command.room!r}", "room")
    if state.breakout_of.get(target.identity) == command.room:
        return []
    return [BreakoutMovedEvent(target.identity, command.room, actor.identity)]
