"""The breakout-room rules of :func:`rooms.decide`: opening a round, moving people (staff moves,
mass moves, students' own choice), the timer, broadcasts, the help queue, sharing the boards of
the last round, and closing.

The moving rules hold for every command that moves someone: only the teacher moves another member
of staff (so nobody but the teacher moves the teacher), a removed participant is never moved
(``no_such_participant``), and a move to the place one is in changes nothing. Each function
checks one command and returns its events, or raises a :class:`rooms.RoomError`
(docs/protocol.md, "Breakout rooms").
"""

import unicodedata
from collections.abc import Iterable, Mapping, Sequence

from rooms.breakout_assign import AssignmentImpossible, auto_assign
from rooms.checks import check_text, known_participant, require_staff
from rooms.commands import (
    AutoAssign,
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
)
from rooms.errors import (
    BadField,
    BreakoutFull,
    BreakoutsOpen,
    NoSuchBreakout,
    NotAllowed,
)
from rooms.events import (
    BreakoutAssignedEvent,
    BreakoutBoardsSharedEvent,
    BreakoutClosedEvent,
    BreakoutHelpAskedEvent,
    BreakoutHelpClearedEvent,
    BreakoutMovedEvent,
    BreakoutOpenedEvent,
    BreakoutTimerSetEvent,
    ChatMessageEvent,
    Event,
)
from rooms.participant import Participant
from rooms.roles import Role
from rooms.state import RoomState

BREAKOUTS_MAX = 50
"""Breakout rooms open at once."""
BREAKOUT_NAME_MAX = 64
"""Characters of a breakout room's name."""
DURATION_MAX_S = 24 * 3600
"""The longest breakout timer (``duration_s``, ``remaining_s``)."""
WARN_MAX_S = 3600
WARN_DEFAULT_S = 60
"""Seconds before the end that clients warn, unless ``warn_s`` says otherwise."""
CAP_MAX = 1000
"""The largest self-select cap per room."""
BROADCAST_TEXT_MAX = 2000
AUTO_KEYS = frozenset({"apart", "together"})


def breakout_open(state: RoomState, actor: Participant, command: BreakoutOpen) -> list[Event]:
    require_staff(actor, "open breakout rooms")
    if state.breakouts:
        raise BreakoutsOpen("close the breakout rooms first")
    if command.groups is not None:
        # The edge replaces a saved group set's name with its rooms and members.
        raise BadField(f"no saved groups {command.groups!r}", "groups")
    rooms = command.rooms
    check_room_names(rooms)
    duration_s = check_range(command.duration_s, "duration_s", 1, DURATION_MAX_S)
    warn_s = check_range(command.warn_s, "warn_s", 0, WARN_MAX_S)
    cap = check_range(command.cap, "cap", 1, CAP_MAX)
    members: dict[str, str] = {}
    for identity, room in (command.members or {}).items():
        check_mover(state, actor, identity, "members")
        if room not in rooms:
            raise NoSuchBreakout(f"{room!r} is not one of the rooms opened", "members")
        members[identity] = room
    round_ = state.breakout_round + 1
    if command.auto is not None:
        students = [s for s in _students(state) if s not in members]
        members.update(_auto(state, command.auto, students, rooms, members, f"{round_}"))
    return [
        BreakoutOpenedEvent(
            rooms=tuple(rooms),
            by=actor.identity,
            round=round_,
            boards=tuple(f"br{round_}-{i}" for i in range(1, len(rooms) + 1)),
            members=members,
            duration_s=duration_s,
            warn_s=WARN_DEFAULT_S if warn_s is None else warn_s,
            self_select=bool(command.self_select),
            cap=cap,
        )
    ]


def breakout_assign(state: RoomState, actor: Participant, command: BreakoutAssign) -> list[Event]:
    require_staff(actor, "move participants between rooms")
    require_open(state)
    places: dict[str, str | None] = dict(state.breakout_of)
    for identity, room in (command.members or {}).items():
        check_mover(state, actor, identity, "members")
        if room is not None and room not in state.breakouts:
            raise NoSuchBreakout(f"no open breakout room {room!r}", "members")
        places[identity] = room
    if command.auto is not None:
        in_main = [s for s in _students(state) if places.get(s) is None]
        fixed = {who: room for who, room in places.items() if room is not None}
        seed = f"{state.breakout_round}/{state.last_id}"
        places.update(_auto(state, command.auto, in_main, state.breakouts, fixed, seed))
    changes = {
        identity: room
        for identity, room in places.items()
        if state.breakout_of.get(identity) != room
    }
    if not changes:
        return []
    return [BreakoutAssignedEvent(changes, actor.identity)]


def breakout_move(state: RoomState, actor: Participant, command: BreakoutMove) -> list[Event]:
    require_staff(actor, "move participants between rooms")
    target = check_mover(state, actor, command.identity, "identity")
    if command.room is not None and command.room not in state.breakouts:
        raise NoSuchBreakout(f"no open breakout room {command.room!r}", "room")
    if state.breakout_of.get(target.identity) == command.room:
        return []
    return [BreakoutMovedEvent(target.identity, command.room, actor.identity)]


def breakout_choose(state: RoomState, actor: Participant, command: BreakoutChoose) -> list[Event]:
    if actor.is_staff:
        raise NotAllowed("staff move themselves with breakout.move")
    if not state.breakout_self_select:
        raise NotAllowed("students pick their breakout room only when staff let them", "room")
    if command.room is not None and command.room not in state.breakouts:
        raise NoSuchBreakout(f"no open breakout room {command.room!r}", "room")
    if state.breakout_of.get(actor.identity) == command.room:
        return []
    cap = state.breakout_cap
    if command.room is not None and cap is not None:
        students = sum(
            1
            for identity, room in state.breakout_of.items()
            if room == command.room and not _is_staff(state, identity)
        )
        if students >= cap:
            raise BreakoutFull(f"{command.room!r} is full ({cap} students)", "room")
    return [BreakoutMovedEvent(actor.identity, command.room, actor.identity)]


def breakout_timer(state: RoomState, actor: Participant, command: BreakoutTimer) -> list[Event]:
    require_staff(actor, "set the breakout timer")
    require_open(state)
    remaining_s = check_range(command.remaining_s, "remaining_s", 1, DURATION_MAX_S)
    if remaining_s is None and state.breakout_ends_at is None:
        return []
    return [BreakoutTimerSetEvent(remaining_s, actor.identity)]


def breakout_broadcast(
    state: RoomState, actor: Participant, command: BreakoutBroadcast
) -> list[Event]:
    require_staff(actor, "broadcast to the breakout rooms")
    require_open(state)
    check_text(command.text, "text", BROADCAST_TEXT_MAX)
    return [
        ChatMessageEvent(
            actor.identity, actor.name, actor.role, command.text, None, room=None, broadcast=True
        )
    ]


def breakout_help(state: RoomState, actor: Participant, command: BreakoutHelp) -> list[Event]:
    if actor.is_staff:
        raise NotAllowed("students ask the staff for help")
    room = state.breakout_of.get(actor.identity)
    if room is None:
        raise NotAllowed("ask for help from a breakout room; in the main room, raise your hand")
    if any(identity == actor.identity for identity, _ in state.breakout_help):
        return []
    return [BreakoutHelpAskedEvent(actor.identity, room)]


def breakout_help_done(
    state: RoomState, actor: Participant, command: BreakoutHelpDone
) -> list[Event]:
    identity = actor.identity if command.identity is None else command.identity
    if identity != actor.identity and not actor.is_staff:
        raise NotAllowed("a student withdraws only their own help request", "identity")
    if all(who != identity for who, _ in state.breakout_help):
        return []
    return [BreakoutHelpClearedEvent(identity, actor.identity)]


def breakout_share_boards(
    state: RoomState, actor: Participant, command: BreakoutShareBoards
) -> list[Event]:
    require_staff(actor, "share the breakout boards")
    if not state.gallery:
        raise NoSuchBreakout("no breakout round has closed yet", "shared")
    if state.gallery_shared == command.shared:
        return []
    return [BreakoutBoardsSharedEvent(command.shared, actor.identity)]


def breakout_close(state: RoomState, actor: Participant, command: BreakoutClose) -> list[Event]:
    require_staff(actor, "close breakout rooms")
    if not state.breakouts:
        return []
    return [BreakoutClosedEvent(actor.identity, state.breakout_round, "staff")]


def breakout_expire(state: RoomState, command: BreakoutExpire) -> list[Event]:
    """The timer of round ``command.round`` ran out: close it, unless it closed already or its
    timer changed since (then another node's proposal, or a newer timer, wins)."""
    if (
        not state.breakouts
        or command.round != state.breakout_round
        or command.ends_at != state.breakout_ends_at
    ):
        return []
    return [BreakoutClosedEvent(None, state.breakout_round, "timer")]


def scoped_room(state: RoomState, actor: Participant, room: str | None) -> str | None:
    """The room a room-wide chat message or a question of ``actor`` goes to.

    A student writes in their place and may not name another room; staff write in their own
    place, or in the open breakout ``room`` they name.

    Raises:
        NotAllowed: a student named a room that is not theirs.
        NoSuchBreakout: staff named a room that is not open.
    """
    place = state.breakout_of.get(actor.identity)
    if room is None or room == place:
        return place
    if not actor.is_staff:
        raise NotAllowed("a student writes only in the room they are in", "room")
    if room not in state.breakouts:
        raise NoSuchBreakout(f"no open breakout room {room!r}", "room")
    return room


def check_room_names(rooms: Sequence[str]) -> None:
    """1 to ``BREAKOUTS_MAX`` distinct names of 1-64 characters, not blank, without control
    characters; else ``BadField`` (field ``rooms``)."""
    if not 1 <= len(rooms) <= BREAKOUTS_MAX:
        raise BadField(f"open 1 to {BREAKOUTS_MAX} breakout rooms, not {len(rooms)}", "rooms")
    if len(set(rooms)) != len(rooms):
        raise BadField("breakout room names are distinct", "rooms")
    for name in rooms:
        if not name.strip() or len(name) > BREAKOUT_NAME_MAX:
            raise BadField(
                f"a breakout room's name is 1-{BREAKOUT_NAME_MAX} characters, not blank", "rooms"
            )
        if any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Zl", "Zp") for c in name):
            raise BadField("a breakout room's name has no control characters", "rooms")


def check_range(value: int | None, field: str, low: int, high: int) -> int | None:
    """``value`` None, or within ``low``..``high``; else ``BadField`` naming ``field``."""
    if value is not None and not low <= value <= high:
        raise BadField(f"{field} is {low} to {high}", field)
    return value


def check_mover(state: RoomState, actor: Participant, identity: str, field: str) -> Participant:
    """The participant ``identity`` whom ``actor`` may move.

    Raises:
        NoSuchParticipant: never joined, or removed.
        NotAllowed: another member of staff, and ``actor`` is not the teacher.
    """
    target = known_participant(state, identity, field)
    if target.is_staff and target.identity != actor.identity and actor.role is not Role.TEACHER:
        raise NotAllowed("only the teacher moves another member of staff", field)
    return target


def require_open(state: RoomState) -> None:
    """``NoSuchBreakout`` unless breakout rooms are open."""
    if not state.breakouts:
        raise NoSuchBreakout("no breakout rooms are open")


def _students(state: RoomState) -> list[str]:
    """Every student of the room who was not removed, in the order they first joined."""
    return [
        identity
        for identity, p in state.participants.items()
        if p.role is Role.STUDENT and identity not in state.removed
    ]


def _auto(
    state: RoomState,
    auto: AutoAssign,
    students: Sequence[str],
    rooms: Sequence[str],
    fixed: Mapping[str, str],
    seed: str,
) -> dict[str, str]:
    if not auto.keys() <= AUTO_KEYS:
        raise BadField(f"auto has only {', '.join(sorted(AUTO_KEYS))}", "auto")
    apart = auto.get("apart", ())
    together = auto.get("together", ())
    if any(len(pair) != 2 for pair in apart):
        raise BadField("auto.apart holds pairs of identities", "auto")
    for identity in _named(apart, together):
        known_participant(state, identity, "auto")
    try:
        return auto_assign(
            students,
            rooms,
            fixed=fixed,
            apart=apart,
            together=together,
            seed=f"{state.room_id}/{seed}",
        )
    except AssignmentImpossible as exc:
        raise BadField(str(exc), "auto") from exc


def _named(*groups: Iterable[Sequence[str]]) -> dict[str, None]:
    return {identity: None for group in groups for ids in group for identity in ids}


def _is_staff(state: RoomState, identity: str) -> bool:
    participant = state.participants.get(identity)
    return participant is not None and participant.is_staff
