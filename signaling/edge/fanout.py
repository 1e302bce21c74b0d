"""Fan-out: one loop turn's events as the writes each member gets.

A hub encodes each event once (invariant 4) and, at the end of the loop turn, writes what the
turn delivered: one write per member. When every event is for everyone, every member gets the
same frames and the same pre-built wire bytes; otherwise each member gets the events its
audience admits (:func:`rooms.audience_of`). A member greeted during the turn has the events up
to its greeting in that greeting already (``covered``: member -> the last id it has).

An event scoped to a breakout room (``Audience.room``) reaches the staff and the members whose
place is that room when it is fanned out: the hub writes out a turn before any event that moves
someone, so the places ``recipients`` knows are the places of the turn's events.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from rooms import Audience, Participant, Record


class Recipient(Protocol):
    @property
    def participant(self) -> Participant: ...


M = TypeVar("M", bound=Recipient)


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One delivered event: its record, its encoded frame, that frame's wire bytes, and who
    may receive it."""

    record: Record
    frame: bytes
    wire: bytes
    audience: Audience


def plan_fanout(
    batch: Sequence[Outgoing],
    recipients: Callable[[Audience], Sequence[M]],
    covered: Mapping[M, int],
    places: Mapping[str, str] | None = None,
) -> Iterator[tuple[M, list[bytes], bytes]]:
    """The writes for ``batch``: ``(member, frames, wire)``, at most one per member.

    Args:
        recipients: the members an audience reaches (``Audience.ALL``: every member).
        covered: members greeted during the turn, with the last id their greeting covered.
        places: identity -> the breakout room it is in (absent: the main room); only whether
            anyone is in one is read here: ``recipients`` knows each member's place.
    """
    if not batch:
        return
    if not places:
        # Nobody is in a breakout room: the main room's events are everyone's.
        batch = [_unscoped(out) for out in batch]
    elif any(out.audience.kind == "room" for out in batch):
        yield from _by_recipient(batch, recipients, covered)
        return
    if len(batch) == 1:
        out = batch[0]
        frames = [out.frame]
        for member in recipients(out.audience):
            if not covered or covered.get(member, 0) < out.record.id:
                yield member, frames, out.wire
        return
    if all(out.audience.kind == "all" for out in batch):
        shared = [out.frame for out in batch]
        wire = b"".join(out.wire for out in batch)
        for member in recipients(Audience.ALL):
            if covered and member in covered:
                mine = _admitted(batch, member.participant, covered[member])
                if mine is not None:
                    yield member, *mine
            else:
                yield member, shared, wire
        return
    if any(out.audience.kind == "room" for out in batch):
        yield from _by_recipient(batch, recipients, covered)
        return
    if any(out.audience.kind == "all" for out in batch):
        yield from _mixed(batch, recipients(Audience.ALL), covered)
        return
    # Nothing for everyone (poll answers, a large room's votes): only the staff and the members
    # the events name get a write, so a flush costs what it sends, not the room's size.
    named: dict[M, None] = dict.fromkeys(recipients(Audience.STAFF))
    for identity in {out.audience.identity for out in batch if out.audience.kind == "staff_and"}:
        if identity is not None:
            named.update(dict.fromkeys(recipients(Audience.staff_and(identity))))
    yield from _mixed(batch, list(named), covered)


def _by_recipient(
    batch: Sequence[Outgoing],
    recipients: Callable[[Audience], Sequence[M]],
    covered: Mapping[M, int],
) -> Iterator[tuple[M, list[bytes], bytes]]:
    """A batch with events scoped to a room: each member gets what each event's recipients
    include it in, in order (the places are known to ``recipients``, not to the events)."""
    mine: dict[M, list[Outgoing]] = {}
    for out in batch:
        for member in recipients(out.audience):
            if not covered or covered.get(member, 0) < out.record.id:
                mine.setdefault(member, []).append(out)
    for member, outs in mine.items():
        yield member, [o.frame for o in outs], b"".join(o.wire for o in outs)


def _unscoped(out: Outgoing) -> Outgoing:
    if out.audience.kind != "room":
        return out
    audience = Audience.ALL if out.audience.room is None else Audience.STAFF
    return Outgoing(out.record, out.frame, out.wire, audience)


def _mixed(
    batch: Sequence[Outgoing], members: Sequence[M], covered: Mapping[M, int]
) -> Iterator[tuple[M, list[bytes], bytes]]:
    """A batch some of whose events are for some members only. The students none of them names
    (most students, in a large room's vote storm) share one write of the events for everyone; a
    student named gets those and its own, in order; staff and members greeted this turn pick
    theirs."""
    shared = [out for out in batch if out.audience.kind == "all"]
    frames = [out.frame for out in shared]
    wire = b"".join(out.wire for out in shared)
    own: dict[str | None, list[Outgoing]] = {}
    for out in batch:
        if out.audience.kind == "staff_and":
            own.setdefault(out.audience.identity, []).append(out)
    for member in members:
        p = member.participant
        if p.is_staff or member in covered:
            mine = _admitted(batch, p, covered.get(member, 0))
            if mine is not None:
                yield member, *mine
        elif p.identity in own:
            merged = sorted([*shared, *own[p.identity]], key=lambda out: out.record.id)
            yield member, [o.frame for o in merged], b"".join(o.wire for o in merged)
        elif frames:
            yield member, frames, wire


def _admitted(
    batch: Sequence[Outgoing], participant: Participant, after_id: int
) -> tuple[list[bytes], bytes] | None:
    mine = [o for o in batch if o.record.id > after_id and o.audience.admits(participant)]
    if not mine:
        return None
    return [o.frame for o in mine], b"".join(o.wire for o in mine)
