"""The batched write path: commands that queue while an append is in flight commit together.

A hub appends one batch at a time. The commands that arrived meanwhile form the next batch
(:func:`batch_size`); :func:`plan_batch` decides them in arrival order, each against the state
the ones before it leave (a copy of the room's state, evolved between them), and yields one list
of records for one compare-and-append at the state's last id. Only when that append commits does
any sender get its answer, the events or the error it would have got alone; when it conflicts
(another node appended first) the hub folds what the other node appended and plans the same batch
again. The room's state is never evolved by a batch that did not commit.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from rooms import Command, Participant, Record, RoomError, RoomState, admit, copy_state, decide
from rooms import evolve as fold

MAX_BATCH = 256
"""Commands in one append at most: a bounded store round trip and a bounded wait for each."""


@dataclass(frozen=True, slots=True)
class Proposal:
    """One queued request for the room's log: a command, or a join (``command`` None: admit
    ``actor``, :func:`rooms.admit`, with the ``class_name`` of its token)."""

    actor: Participant
    command: Command | None
    class_name: str | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a proposal came to in a plan: its records (``start``, ``count`` into the plan's
    records; count 0 when nothing changed), or the rule it broke."""

    start: int = 0
    count: int = 0
    error: RoomError | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    """A batch decided against ``base_last_id``: one outcome per proposal, in order, and the
    records of all of them (ids from ``base_last_id + 1``, one time ``ts``).

    ``state`` is the room's state after the records: a copy evolved through them when more than
    one proposal was decided after an earlier one changed something, else None (fold the records
    into the room's state once they commit).
    """

    base_last_id: int
    outcomes: tuple[Outcome, ...]
    records: tuple[Record, ...]
    state: RoomState | None

    def records_of(self, index: int) -> tuple[Record, ...]:
        outcome = self.outcomes[index]
        return self.records[outcome.start : outcome.start + outcome.count]


def plan_batch(state: RoomState, proposals: Sequence[Proposal], ts: int) -> Plan:
    """Decide ``proposals`` in order; ``state`` is not changed.

    Each proposal sees the events of those before it: the first is decided against ``state``;
    once one produced events and another follows, the rest are decided against a copy
    (:func:`rooms.copy_state`) evolved with them.
    """
    current = state
    copied = False
    records: list[Record] = []
    outcomes: list[Outcome] = []
    next_id = state.last_id + 1
    for index, proposal in enumerate(proposals):
        try:
            if proposal.command is None:
                events = admit(current, proposal.actor, proposal.class_name)
            else:
                events = decide(current, proposal.actor, proposal.command)
        except RoomError as exc:
            outcomes.append(Outcome(error=exc))
            continue
        made = [Record(next_id + i, ts, event) for i, event in enumerate(events)]
        outcomes.append(Outcome(len(records), len(made)))
        records.extend(made)
        next_id += len(made)
        if made and (copied or index + 1 < len(proposals)):
            if not copied:
                current = copy_state(current)
                copied = True
            for record in made:
                fold(current, record)
    return Plan(state.last_id, tuple(outcomes), tuple(records), current if copied else None)


def batch_size(queued: int, limit: int = MAX_BATCH) -> int:
    """How many of ``queued`` waiting proposals the next append takes: all, up to ``limit``."""
    return min(queued, limit)


def conflict_backoff_s(conflicts: int, rng: random.Random) -> float:
    """Seconds to wait before planning again after ``conflicts`` conflicts in a row.

    The first two retry at once (the conflict's reply carried the other node's records, so the
    next try is usually the one that commits); after that a random wait that doubles up to 64 ms
    lets the node that keeps winning drain, so no node starves (full jitter).
    """
    if conflicts <= 2:
        return 0.0
    return rng.uniform(0.0, min(0.064, 0.001 * 2 ** (conflicts - 2)))
