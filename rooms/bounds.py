"""The bounds on what participants can make a room hold, so a ``welcome`` stays small whatever
anyone sends (docs/protocol.md, "Bounds").

Every list in a :class:`rooms.RoomState` that a command grows is bounded here, by count and by
size. Sizes are estimates of the bytes an entry takes in the ``RoomView`` (UTF-8 text plus a fixed
overhead for the map's keys and numbers), so the bounds hold for any text, emoji included:

- Questions: dismissed ones leave the state; a participant has at most
  :data:`OPEN_QUESTIONS_PER_AUTHOR` unanswered; the room keeps at most :data:`QUESTIONS_MAX` of
  at most :data:`QUESTIONS_BYTES_MAX` together. A new question that does not fit pushes out the
  oldest answered ones; when answered ones cannot make room it is refused (``limit_reached``).
- Polls: at most :data:`POLLS_MAX` of at most :data:`POLLS_BYTES_MAX` together; a new poll pushes
  out the oldest closed ones, and is refused when closed ones cannot make room.
- Chat: the state keeps the last ``CHAT_HISTORY`` messages per conversation; the ``RoomView``
  carries at most :data:`CHAT_VIEW_BYTES_MAX` of them.
- Whiteboards: the room knows at most :data:`BOARDS_MAX` board names (locked, cleared or
  snapshotted).

:func:`make_room` is used by :func:`rooms.decide` (may the command go ahead?) and by
:func:`rooms.evolve` (which entries leave), so replaying the log drops the same entries.
"""

from collections.abc import Iterable
from dataclasses import dataclass

QUESTIONS_MAX = 500
"""Questions a room keeps (open and answered; dismissed ones leave)."""
QUESTIONS_BYTES_MAX = 80 * 1024
"""The estimated ``RoomView`` bytes of a room's questions together."""
OPEN_QUESTIONS_PER_AUTHOR = 5
"""Unanswered questions one identity may have in the Q&A at once."""
POLLS_MAX = 50
"""Polls a room keeps (open and closed)."""
POLLS_BYTES_MAX = 48 * 1024
"""The estimated ``RoomView`` bytes of a room's polls together (without staff's ``answers``)."""
CHAT_VIEW_BYTES_MAX = 48 * 1024
"""The estimated bytes of the chat messages one ``RoomView`` carries."""
WAITING_MAX = 200
"""Students in a room's waiting room at once; past it a join that must wait is ``room_locked``."""
REVOKED_INVITES_MAX = 64
"""Invite links a room remembers as revoked; past it ``invite.revoke`` is ``limit_reached``."""
BOARDS_MAX = 128
"""Whiteboard names a room knows (``board.lock``, ``board.clear``, ``board.snapshot``)."""

_QUESTION_OVERHEAD = 128
_POLL_OVERHEAD = 256
_POLL_OPTION_OVERHEAD = 8
_CHAT_OVERHEAD = 96


def text_bytes(*texts: str | None) -> int:
    """The UTF-8 length of ``texts`` together (None counts 0)."""
    return sum(len(text.encode("utf-8", "surrogatepass")) for text in texts if text)


def question_bytes(author: str, name: str, text: str) -> int:
    """The estimated ``RoomView`` bytes of one ``Question`` map."""
    return _QUESTION_OVERHEAD + text_bytes(author, name, text)


def poll_bytes(question: str, options: Iterable[str]) -> int:
    """The estimated ``RoomView`` bytes of one ``Poll`` map, without staff's ``answers``."""
    return (
        _POLL_OVERHEAD
        + text_bytes(question)
        + sum(_POLL_OPTION_OVERHEAD + text_bytes(option) for option in options)
    )


def chat_bytes(sender: str, name: str, text: str, thread: str | None) -> int:
    """The estimated ``RoomView`` bytes of one ``ChatMessage`` map."""
    return _CHAT_OVERHEAD + text_bytes(sender, name, text, thread)


@dataclass(frozen=True, slots=True)
class Kept:
    """One kept entry (a question or a poll): its id, estimated bytes, and whether it is done
    (answered, closed), which lets it make room for a new one."""

    id: int
    size: int
    done: bool


def make_room(
    kept: Iterable[Kept], new_size: int, count_max: int, bytes_max: int, *, only_done: bool
) -> list[int] | None:
    """The ids to drop, oldest first, so one more entry of ``new_size`` bytes fits in
    ``count_max`` entries and ``bytes_max`` bytes.

    Done entries go first, oldest (lowest id) first. With ``only_done`` (a command being decided)
    only done entries may go, and None means they are not enough; without it (folding a log
    written before these bounds, or a damaged one) the oldest others go next.
    """
    entries = sorted(kept, key=lambda entry: entry.id)
    count = len(entries) + 1
    total = sum(entry.size for entry in entries) + new_size
    dropped: list[int] = []
    candidates = [e for e in entries if e.done]
    if not only_done:
        candidates += [e for e in entries if not e.done]
    for entry in candidates:
        if count <= count_max and total <= bytes_max:
            break
        dropped.append(entry.id)
        count -= 1
        total -= entry.size
    if count <= count_max and total <= bytes_max:
        return dropped
    return None if only_done else dropped
