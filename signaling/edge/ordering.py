"""Ordering and gap detection for a room hub that follows its room's log.

A hub folds the log in id order and never twice (invariants 2 and 3 of ``design.md``). Records
reach it from its own appends and from the bus (other nodes' appends), in any order, repeated,
and while the hub is still loading its room; :class:`LogFollower` says what to do with each
delivery.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from rooms import Record


class Step(Enum):
    """What to do with a delivery."""

    FOLD = "fold"
    """Fold ``Offer.records`` (they continue the log at ``last_id + 1``, in order)."""
    IGNORE = "ignore"
    """Nothing new: every record was folded already (a duplicate or a late echo)."""
    READ_GAP = "read_gap"
    """Records are missing before these: read the log from ``last_id`` (a gap fill)."""
    AFTER_LOAD = "after_load"
    """The room is loading: read on from where the load ends, once it has."""


@dataclass(frozen=True, slots=True)
class Offer:
    step: Step
    records: tuple[Record, ...] = ()


@dataclass(slots=True)
class LogFollower:
    """Where a hub is in its room's log, and what a delivery means for it.

    ``loaded`` is False while the room is being read from the store; deliveries then only mark
    that the hub must read on after the load (``pending_after_load``).
    """

    loaded: bool = False
    pending_after_load: bool = False

    def offer(self, last_id: int, records: Sequence[Record]) -> Offer:
        """Classify ``records`` delivered to a hub whose state is folded through ``last_id``.

        Records at or below ``last_id`` are dropped (duplicates); the rest must start at
        ``last_id + 1`` and be consecutive, else the delivery is a gap.
        """
        if not self.loaded:
            self.pending_after_load = True
            return Offer(Step.AFTER_LOAD)
        fresh = tuple(r for r in records if r.id > last_id)
        if not fresh:
            return Offer(Step.IGNORE)
        expected = last_id + 1
        for record in fresh:
            if record.id != expected:
                return Offer(Step.READ_GAP)
            expected += 1
        return Offer(Step.FOLD, fresh)

    def missed(self) -> Step:
        """The bus lost messages (a reconnect, an overflow): read the gap, or after the load."""
        if not self.loaded:
            self.pending_after_load = True
            return Step.AFTER_LOAD
        return Step.READ_GAP

    def start_loading(self) -> None:
        self.loaded = False

    def finish_loading(self) -> bool:
        """The load ended; True when deliveries arrived meanwhile (read on from the store)."""
        self.loaded = True
        pending, self.pending_after_load = self.pending_after_load, False
        return pending


def continuation(last_id: int, records: Sequence[Record]) -> tuple[Record, ...] | None:
    """The part of ``records`` (read from the store after ``last_id``) that continues the log,
    or None when the store's log does not reach back to ``last_id + 1`` (it was trimmed past
    it: the hub must reload from the snapshot)."""
    fresh = tuple(r for r in records if r.id > last_id)
    if fresh and fresh[0].id != last_id + 1:
        return None
    return fresh
