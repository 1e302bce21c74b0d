"""Vote tallies: in a large room, students learn other participants' votes as one coalesced frame.

An upvote storm in a room of N students would cost every student N ``event`` frames (N^2
deliveries). Above ``--large-room`` online, a student is sent the ``question.upvoted`` and
``question.unvoted`` events of their own votes only (that is how ``voted`` reaches them); the
others' votes change the counts of a ``tally`` frame sent to every student at most once per
presence interval, the same bytes for all of them (docs/protocol.md, "Vote tallies";
docs/decisions/0013-vote-tallies-in-large-rooms.md). Staff keep the full stream, and the log keeps
every event.

Sans I/O: the hub asks :meth:`VoteTally.route` for each event it folds, sends
:meth:`VoteTally.take` when its presence timer fires, and filters a resume with
:func:`resume_audience` followed by :func:`resume_tally`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from rooms import Audience, Event, QuestionUnvotedEvent, QuestionUpvotedEvent, RoomState

#: The events students of a large room receive as tallies (their own excepted): the per-participant
#: counters that reach everyone. ``poll.answered`` reaches only the staff and its student already.
VOTES: tuple[type[QuestionUpvotedEvent], type[QuestionUnvotedEvent]] = (
    QuestionUpvotedEvent,
    QuestionUnvotedEvent,
)
VOTE_TYPES: frozenset[str] = frozenset(cls.type for cls in VOTES)


def coalesced_audience(event: Event, audience: Audience) -> Audience:
    """Who receives ``event`` when the room's votes go to students as tallies: a vote goes to the
    staff and the voter; any other event keeps ``audience``."""
    if isinstance(event, VOTES):
        return Audience.staff_and(event.identity)
    return audience


def resume_audience(event: Event, audience: Audience, *, large: bool) -> Audience:
    """Who receives ``event`` among the missed events of a resume: in a large room a student
    gets only their own votes (the ``tally`` that follows the missed events holds the rest)."""
    return coalesced_audience(event, audience) if large else audience


def tally_message(through: int, votes: Iterable[tuple[int, int]]) -> dict[str, Any]:
    """The ``tally`` frame: ``through`` is the id of the newest event the counts include;
    ``votes`` are (question id, upvotes) pairs, sent sorted by question id."""
    return {
        "t": "tally",
        "through": through,
        "questions": [{"question_id": q, "votes": n} for q, n in sorted(votes)],
    }


def resume_tally(state: RoomState) -> dict[str, Any] | None:
    """The ``tally`` a resuming student gets after the missed events: the votes of every question
    the room keeps, as of ``state.last_id`` (None when it keeps none).

    Every question, not only those the missed events touch: a student may have received an event
    after votes that were withheld from it and then dropped before their tally reached it, so its
    counts can be stale for questions no missed event names. The room keeps at most 500 questions
    (docs/protocol.md, "Bounds"), so the frame stays bounded.
    """
    if not state.questions:
        return None
    return tally_message(state.last_id, ((q, c.votes) for q, c in state.questions.items()))


@dataclass(slots=True)
class VoteTally:
    """The questions whose votes changed since the last tally was sent to this node's students."""

    _changed: dict[int, None] = field(default_factory=dict)

    @property
    def pending(self) -> bool:
        """A tally is due: some question's votes changed that students were not sent."""
        return bool(self._changed)

    @property
    def pending_questions(self) -> frozenset[int]:
        """The questions whose votes students are behind on until the next tally."""
        return frozenset(self._changed)

    def route(self, event: Event, audience: Audience, *, large: bool) -> Audience:
        """Who receives ``event``, just folded into the room's state, and note it for the tally.

        A vote in a large room goes to the staff and the voter, and its question waits for the
        next tally; any other event, and any event in a small room, keeps ``audience``. A room
        that shrinks below ``--large-room`` with a tally pending sends its votes in full at
        once: they move a count that misses the withheld votes until the tally sets it.
        """
        if large and isinstance(event, VOTES):
            self._changed[event.question_id] = None
            return Audience.staff_and(event.identity)
        return audience

    def take(self, state: RoomState) -> dict[str, Any] | None:
        """The ``tally`` frame of the questions changed since the last call, with their votes in
        ``state`` (the room after every event delivered so far), and start a new window; None
        when nothing changed or every changed question has left the room (dismissed).

        ``through`` is ``state.last_id``: the caller sends every event up to it to the members'
        queues before this frame, so a client that received the tally received every event
        with an id up to ``through`` that it may see.
        """
        changed, self._changed = self._changed, {}
        kept = state.questions
        votes = [(q, kept[q].votes) for q in changed if q in kept]
        if not votes:
            return None
        return tally_message(state.last_id, votes)


def tally_for_place(
    tally: dict[str, Any], state: RoomState, place: str | None
) -> dict[str, Any] | None:
    """The part of ``tally`` a student in ``place`` (a breakout room, None: the main room) may
    see: the counts of its place's questions only, so no question of another breakout room
    reaches it, not even as an id (None when none is left)."""
    questions = state.questions
    entries = [
        e
        for e in tally["questions"]
        if e["question_id"] in questions and questions[e["question_id"]].room == place
    ]
    if not entries:
        return None
    if len(entries) == len(tally["questions"]):
        return tally
    return {**tally, "questions": entries}
