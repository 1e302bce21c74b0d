"""Which of a board's numbered updates this node's document holds, and what to do about the others:
the board's sequence and gap tracking without I/O (sans-I/O, the way websockets' ``protocol.py``
stands apart from its asyncio server).

The store numbers every update of a board (``seq``, from 1) and announces each append, this node's
and every other node's, through the board feed (:mod:`whiteboard.feed`). Announcements may come
late, out of order, twice, or not at all, and may come while the board is still loading.
:class:`BoardSequence` takes those events and answers with :class:`Actions`: the updates to apply
and relay, a timer to arm, a read of the store to start. :class:`whiteboard.board.Board` feeds it
events and carries its actions out; nothing here awaits, sleeps or touches the store.

The rules:

- An update at or below ``last_seq``, or already held above it, is a repeat: dropped.
- Any other is applied at once, even past a gap (Yjs updates commute; pycrdt keeps what it cannot
  integrate yet). A number below one held that has not arrived is a gap: usually another node's
  append still on its way, so the board waits :data:`GAP_CHECK_S` before reading the store for it.
- Announcements heard while the board loads are kept and replayed once it has loaded: those the
  load already held are repeats then.
- A lost subscription, a gap still open when the timer fires, or a failed read (retried after
  :data:`GAP_CHECK_S`) start a read of the store past ``last_seq``; one at a time.
- When the store has compacted past ``last_seq`` (the updates the board lacks were merged into the
  log's base), the read cannot serve them: the board reloads the whole log instead.
- Once the board failed (its document no longer matches the store) nothing more is taken.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

#: How long a gap may stay open before the board reads the store for it (seconds).
GAP_CHECK_S = 0.25


@dataclass(frozen=True, slots=True)
class Actions:
    """What the board does after an event, in this order."""

    #: Updates to apply to the document and relay to the board's peers, as ``(seq, update)`` in
    #: order; their seqs are already counted as held.
    take: tuple[tuple[int, bytes], ...] = ()
    #: Call :meth:`BoardSequence.gap_check_due` in :data:`GAP_CHECK_S`.
    arm_gap_timer: bool = False
    #: Read the store's updates past :attr:`BoardSequence.last_seq`, report them to
    #: :meth:`BoardSequence.filled` (or the failure to :meth:`BoardSequence.fill_failed`), then
    #: call :meth:`BoardSequence.fill_ended`.
    fill: bool = False
    #: (From :meth:`BoardSequence.filled` only.) The store merged updates the board lacks into its
    #: base: load the whole board, apply it, then report its last seq to
    #: :meth:`BoardSequence.reloaded`.
    reload: bool = False


NOTHING = Actions()


class BoardSequence:
    """A board's position in its numbered log, as one node's document holds it.

    Starts loading (announcements are kept until :meth:`loaded`).
    """

    def __init__(self) -> None:
        #: Every update up to this seq is in the document (some above it may be too).
        self.last_seq = 0
        self._ahead: set[int] = set()
        #: Announcements heard while loading, replayed by :meth:`loaded`; None once loaded.
        self._early: list[tuple[int, tuple[bytes, ...]]] | None = []
        #: The gap timer is armed (its :meth:`gap_check_due` has not come yet).
        self.gap_timer_armed = False
        #: A read of the store is under way (until :meth:`fill_ended`).
        self.filling = False
        #: The document no longer matches the store (the board is being dropped).
        self.failed = False

    @property
    def loading(self) -> bool:
        return self._early is not None

    @property
    def ahead(self) -> frozenset[int]:
        """The seqs above :attr:`last_seq` the document holds (non-empty: a gap is open)."""
        return frozenset(self._ahead)

    # -- events --------------------------------------------------------------------------------

    def loaded(self, last_seq: int) -> Actions:
        """The board was loaded from the store through ``last_seq``: the announcements heard
        meanwhile are replayed (what the load held is dropped as repeats)."""
        self.last_seq = last_seq
        early, self._early = self._early or [], None
        take: list[tuple[int, bytes]] = []
        arm = False
        for first_seq, updates in early:
            actions = self.announced(first_seq, updates)
            take += actions.take
            arm = arm or actions.arm_gap_timer
        return Actions(tuple(take), arm_gap_timer=arm)

    def appended(self, first_seq: int, count: int) -> None:
        """This node appended ``count`` updates from ``first_seq`` (already in the document)."""
        self._hold(first_seq, count)

    def announced(self, first_seq: int, updates: Sequence[bytes]) -> Actions:
        """The feed announced an append: ``updates[i]`` has seq ``first_seq + i``. Takes what the
        document does not hold; arms the gap timer when a gap is open."""
        if self._early is not None:
            self._early.append((first_seq, tuple(updates)))
            return NOTHING
        if self.failed:
            return NOTHING
        take = self._new(enumerate(updates, start=first_seq))
        arm = bool(self._ahead) and not self.gap_timer_armed
        self.gap_timer_armed = self.gap_timer_armed or arm
        return Actions(take, arm_gap_timer=arm)

    def resubscribed(self) -> Actions:
        """The feed's subscription was lost and restored: announcements may be missing."""
        return self._fill()

    def gap_check_due(self) -> Actions:
        """The gap timer fired: read the store if a gap is still open."""
        self.gap_timer_armed = False
        return self._fill() if self._ahead else NOTHING

    def filled(self, missing: Sequence[tuple[int, bytes]] | None) -> Actions:
        """The store's updates past :attr:`last_seq` as ``(seq, update)``, or None when it
        compacted past it (then: reload)."""
        if missing is None:
            return Actions(reload=True)
        return Actions(self._new(missing))

    def reloaded(self, last_seq: int) -> None:
        """The whole board was read again and applied, through ``last_seq``."""
        self._hold(self.last_seq + 1, max(0, last_seq - self.last_seq))

    def fill_failed(self) -> Actions:
        """The read of the store failed: try again after :data:`GAP_CHECK_S`."""
        arm = not self.gap_timer_armed
        self.gap_timer_armed = True
        return Actions(arm_gap_timer=arm)

    def fill_ended(self) -> None:
        """The read of the store is over (whatever came of it)."""
        self.filling = False

    def fail(self) -> None:
        """The document no longer matches the store: take nothing more."""
        self.failed = True

    # -- rules ---------------------------------------------------------------------------------

    def _new(self, numbered: Iterable[tuple[int, bytes]]) -> tuple[tuple[int, bytes], ...]:
        """The updates of ``numbered`` the document does not hold, now counted as held."""
        take: list[tuple[int, bytes]] = []
        for seq, update in numbered:
            if seq <= self.last_seq or seq in self._ahead:
                continue  # this node's own append, or a repeat
            take.append((seq, update))
            self._hold(seq, 1)
        return tuple(take)

    def _fill(self) -> Actions:
        if self.filling or self._early is not None or self.failed:
            return NOTHING
        self.filling = True
        return Actions(fill=True)

    def _hold(self, first_seq: int, count: int) -> None:
        self._ahead.update(range(first_seq, first_seq + count))
        while self.last_seq + 1 in self._ahead:
            self.last_seq += 1
            self._ahead.discard(self.last_seq)
        self._ahead = {seq for seq in self._ahead if seq > self.last_seq}
