"""Whiteboards of a room: which boards exist and who may read or write each.

The boards of a room are ``main``, the board of each open breakout room (``br<round>-<i>``: the
``i``-th room of round ``round``, so a name never depends on a room's display name), and the
gallery: the boards of the last closed round, kept read-only. Staff may also open other named
boards (at most ``max_staff_boards`` at once on a node, counted by the whiteboard service). A
student may open ``main`` and the board of the breakout room they are in; they write only the
board of the room they are in, so ``main`` is read-only for a student while they are in a
breakout room; they read the gallery only while staff share it. Locks (``board.lock``) come on
top. See docs/decisions/0008-board-scope.md and 0017-breakout-rooms.md.
"""

from __future__ import annotations

import enum
import re

from rooms.participant import Participant
from rooms.state import RoomState

#: The board every classroom has.
MAIN_BOARD = "main"

_BOARD_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


def is_board_name(name: str) -> bool:
    """True for 1-64 ASCII letters, digits, ``_`` or ``-`` (safe in a URL path and a Redis key)."""
    return _BOARD_NAME.fullmatch(name) is not None


#: Why a write is refused (the reason of the y-protocols permission denied).
REFUSED_LOCKED = "the board is locked: only staff can draw"
REFUSED_NOT_YOUR_ROOM = "you are in a breakout room: only its board is yours to draw on"
REFUSED_CLOSED = "the breakout room is closed: its board is kept read-only"


class BoardAccess(enum.IntEnum):
    """What a participant may do on a board, weakest first."""

    NONE = 0
    READ = 1
    WRITE = 2


def is_room_board(state: RoomState, board: str) -> bool:
    """True for ``main``, the boards of the open breakout rooms and those of the gallery (the
    boards the room has, which do not count against the staff's own named boards)."""
    return board == MAIN_BOARD or board in state.breakout_boards or _in_gallery(state, board)


def own_board(state: RoomState, identity: str) -> str:
    """The board of the room ``identity`` is in: ``main``, or their breakout room's."""
    place = state.breakout_of.get(identity)
    board = None if place is None else state.board_of(place)
    return MAIN_BOARD if board is None else board


def board_access(state: RoomState, participant: Participant, board: str) -> BoardAccess:
    """What ``participant`` may do on ``board`` of the room in ``state``, locks aside.

    The gallery's boards (the last closed round's) are read-only: for staff, and for students
    while staff share them. Otherwise staff write every board (whether a new name may be opened
    is the service's count of staff boards). A student writes the board of the room they are in
    (``main``, or their breakout room's), reads ``main`` while in a breakout room, and has no
    access to any other board.
    """
    if _in_gallery(state, board) and board not in state.breakout_boards:
        if participant.is_staff or state.gallery_shared:
            return BoardAccess.READ
        return BoardAccess.NONE
    if participant.is_staff:
        return BoardAccess.WRITE
    if board == own_board(state, participant.identity):
        return BoardAccess.WRITE
    if board == MAIN_BOARD:
        return BoardAccess.READ
    return BoardAccess.NONE


def _in_gallery(state: RoomState, board: str) -> bool:
    return any(kept == board for _, _, kept in state.gallery)


def write_refusal(state: RoomState, participant: Participant, board: str) -> str | None:
    """Why ``participant`` may not write ``board`` now (the reason of the y-protocols permission
    denied), or None when they may: nobody writes the gallery's boards; otherwise staff always
    may, and a student may write the board of the room they are in while it is not locked."""
    access = board_access(state, participant, board)
    if access is not BoardAccess.WRITE and _in_gallery(state, board):
        return REFUSED_CLOSED
    if participant.is_staff:
        return None
    if access is not BoardAccess.WRITE:
        return REFUSED_NOT_YOUR_ROOM
    if board in state.locked_boards:
        return REFUSED_LOCKED
    return None
