"""The checks every part of :mod:`rooms.decide` shares: the actor's role, a target participant,
text lengths, board names and the room's bounds (:mod:`rooms.bounds`)."""

from rooms.boards import is_board_name
from rooms.bounds import BOARDS_MAX
from rooms.errors import BadField, LimitReached, NoSuchParticipant, NotAllowed
from rooms.participant import Participant
from rooms.state import RoomState

REASON_MAX = 200


def require_staff(actor: Participant, what: str) -> None:
    """Raises ``NotAllowed`` unless ``actor`` is staff; ``what`` completes "only staff ..."."""
    if not actor.is_staff:
        raise NotAllowed(f"only staff {what}")


def known_participant(state: RoomState, identity: str, field: str) -> Participant:
    """The participant ``identity``; ``NoSuchParticipant`` if it never joined or was removed."""
    participant = state.participants.get(identity)
    if participant is None or identity in state.removed:
        raise NoSuchParticipant(f"{identity!r} is not in this room", field)
    return participant


def check_text(text: str, field: str, max_chars: int) -> None:
    """Text of 1 to ``max_chars`` characters that is not only whitespace; else ``BadField``."""
    if not text.strip():
        raise BadField(f"{field} is empty", field)
    if len(text) > max_chars:
        raise BadField(f"{field} is longer than {max_chars} characters", field)


def check_reason(reason: str) -> None:
    """A ``reason`` of at most ``REASON_MAX`` characters; else ``BadField``."""
    if len(reason) > REASON_MAX:
        raise BadField(f"reason is longer than {REASON_MAX} characters", "reason")


def check_board(state: RoomState, board: str) -> None:
    """A board name (1-64 of ``A-Za-z0-9_-``) the room knows or has room for.

    Raises:
        BadField: not a board name.
        LimitReached: the room knows ``BOARDS_MAX`` other board names already.
    """
    if not is_board_name(board):
        raise BadField("board is 1-64 letters, digits, '_' or '-'", "board")
    known = state.locked_boards | state.board_cleared.keys() | state.board_snapshots.keys()
    if board not in known and len(known) >= BOARDS_MAX:
        raise LimitReached(f"a room has at most {BOARDS_MAX} whiteboards", "board")
