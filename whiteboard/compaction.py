"""When a board compacts its log, and how large it is: the board's growth bookkeeping without I/O.

Compaction merges a board's log into one update (the log's new base, in effect a snapshot of the
board) so that loading a board reads one update instead of all of them. Encoding a big board takes
milliseconds on the event loop, so :meth:`CompactionSchedule.due` spreads that cost: it waits for
``compact_updates`` updates or ``compact_bytes`` bytes since the last compaction, and also until
the log since then is as large as what that compaction wrote (amortized O(1) per byte of updates;
a load reads at most about twice the board). :class:`whiteboard.board.Board` reports every change
and asks; it runs the compaction itself.
"""

from __future__ import annotations

from collections.abc import Sequence


class CompactionSchedule:
    """A board's size and its log's growth since the last compaction.

    Args:
        compact_updates: compact after this many updates since the last compaction ...
        compact_bytes: ... or this many bytes of them (whichever comes first), once the
            amortization rule allows (see the module).
    """

    def __init__(self, compact_updates: int, compact_bytes: int) -> None:
        self.compact_updates = compact_updates
        self.compact_bytes = compact_bytes
        #: The board's bytes: its log's base and the updates since, as stored (what
        #: ``max_board_bytes`` bounds), plus updates applied and not yet committed.
        self.size = 0
        #: Updates and their bytes since the last compaction (or since the base of a load).
        self.updates_since = 0
        self.bytes_since = 0

    def loaded(self, size: int, update_bytes: Sequence[int]) -> None:
        """The board was loaded: ``size`` bytes in all, its updates' lengths oldest first (the
        first is the log's base, or the first update when never compacted)."""
        self.size = size
        self.updates_since = max(0, len(update_bytes) - 1)
        self.bytes_since = size - (update_bytes[0] if update_bytes else 0)

    def written(self, nbytes: int) -> None:
        """A client's update was applied (its commit follows)."""
        self.size += nbytes

    def committed(self, count: int, nbytes: int) -> None:
        """``count`` written updates, ``nbytes`` in all, were appended to the log."""
        self.updates_since += count
        self.bytes_since += nbytes

    def took(self, nbytes: int) -> None:
        """Another node's update (already in the log) was applied."""
        self.size += nbytes
        self.updates_since += 1
        self.bytes_since += nbytes

    def cleared(self, nbytes: int) -> None:
        """A clear appended its update of ``nbytes`` (not counted toward ``compact_bytes``)."""
        self.size += nbytes
        self.updates_since += 1

    def reloaded(self, size: int) -> None:
        """The whole board was read again (it was ``size`` bytes in the store)."""
        self.size = max(self.size, size)

    def compacted(self, nbytes: int) -> None:
        """The log was merged into one update of ``nbytes``."""
        self.size = nbytes
        self.updates_since = 0
        self.bytes_since = 0

    def fits(self, nbytes: int, max_bytes: int) -> bool:
        """Whether an update of ``nbytes`` keeps the board within ``max_bytes``."""
        return self.size + nbytes <= max_bytes

    def due(self) -> bool:
        """Whether to compact now (see the module for the rule)."""
        return (
            self.updates_since >= self.compact_updates or self.bytes_since >= self.compact_bytes
        ) and self.bytes_since >= self.size - self.bytes_since
