"""When a room hub snapshots its room's state (so the log can be trimmed behind it)."""

from __future__ import annotations


def snapshot_due(every: int, first_id: int, last_id: int, state_last_id: int, stored: int) -> bool:
    """Whether to save a snapshot of the state after records ``first_id..last_id`` folded.

    Due when those records crossed a multiple of ``every`` (so of several nodes appending to one
    room, the one whose append crossed it saves), or when the state is ``every`` or more records
    past the newest stored snapshot (``stored``; a node that loads a long log saves one). Never
    when ``every`` <= 0. ``first_id`` > ``last_id`` means no records (a load).
    """
    if every <= 0:
        return False
    crossed = first_id <= last_id and last_id // every > (first_id - 1) // every
    return crossed or state_last_id - stored >= every
