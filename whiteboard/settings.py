"""Limits and timings of the whiteboard service (flags and defaults in liveclass/config.py)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class WhiteboardSettings:
    """Sizes are bytes, rates per second, times seconds."""

    #: Largest message a client may send; a large board's sync step 2 must fit.
    max_message_bytes: int = 16 * 1024 * 1024
    #: Largest awareness message (cursors and names are small).
    max_awareness_bytes: int = 64 * 1024
    #: Most entries in one awareness message (refused with 4413 before they are read).
    max_awareness_entries: int = 1024
    #: Awareness client ids one connection may introduce (a Yjs document has one).
    max_awareness_clients: int = 4
    #: Largest board (bytes in the store, compacted first); a write past it gets permission
    #: denied. Equal to the largest message, so a client can always send a whole board.
    max_board_bytes: int = 16 * 1024 * 1024
    awareness_rate_per_s: float = 30.0
    awareness_burst: float = 60.0
    #: Boards staff may open besides ``main`` and the breakout rooms', per room, loaded at once.
    max_staff_boards: int = 8
    #: Compact a board's log after this many updates or bytes since the last compaction.
    compact_updates: int = 1000
    compact_bytes: int = 4 * 1024 * 1024
    #: Unload a board (compacted) this long after its last connection closed.
    board_idle_s: float = 30.0
