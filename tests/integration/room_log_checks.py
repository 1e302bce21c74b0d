"""The checks of a busy class against the room's stored log, folded with ``rooms.evolve``
(the class itself: :mod:`tests.integration.room_workload`).

- every greeting's room view is the fold of the log up to its ``last_id``, as that participant
  sees it, and after it the client received exactly the events of the log it may see, in order:
  no gap, no duplicate, nothing reordered, across resumes on other nodes;
- every acknowledged command's events are in the log where its ack said, and every event a
  student caused is an acknowledged command's or one whose answer never came (at most once);
- the final votes and poll answers are exactly what the answers imply (counted once).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rooms import Audience, Participant, Record, audience_of, evolve, new_room, room_view
from signaling.edge.tally import coalesced_audience
from tests.integration.room_workload import Seat, Sent, Student, plain


@dataclass
class Verdict:
    """What the checks found; ``problems`` empty means the class was correct."""

    problems: list[str] = field(default_factory=list)
    acked: int = 0
    unknown: int = 0
    events: int = 0
    votes: int = 0
    answers: int = 0
    #: Commands answered ``unavailable`` ("nothing was done", docs/protocol.md) that are in the
    #: log all the same (their append committed and its reply was lost in the failover).
    unavailable_done: int = 0

    def fail(self, message: str) -> None:
        if len(self.problems) < 40:
            self.problems.append(message)


def fold_views(
    records: Sequence[Record], room_id: str, wanted: dict[int, list[Participant]]
) -> dict[tuple[int, str], Any]:
    """The room view each ``wanted[last_id]`` participant sees after the log's first
    ``last_id`` records, keyed by (last_id, identity)."""
    state = new_room(room_id)
    views: dict[tuple[int, str], Any] = {}

    def take(at: int) -> None:
        for p in wanted.get(at, ()):
            views[(at, p.identity)] = plain(room_view(state, p))

    take(0)
    for record in records:
        evolve(state, record)
        take(record.id)
    return views


def _audience(record: Record, *, tallies: bool) -> Audience:
    audience = audience_of(record.event)
    if tallies:
        audience = coalesced_audience(record.event, audience)
    return audience


def sees(record: Record, participant: Participant, *, tallies: bool) -> bool:
    """Whether ``participant`` is sent ``record``: by its audience, and with ``tallies`` (a
    large room) a student only its own votes (docs/protocol.md, "Vote tallies")."""
    return _audience(record, tallies=tallies).admits(participant)


class RoomLog:
    """The room's stored log with what the checks read of each record worked out once: a class
    of 300 seats asks the same of every record 300 times (its audience, its ``data``, the votes
    of the whole fold), which took seconds of every contended-room test.

    ``tallies``: the room sends students others' votes as tallies (see :func:`sees`).
    """

    def __init__(self, records: Sequence[Record], room_id: str, *, tallies: bool) -> None:
        self.records = records
        self.room_id = room_id
        self.tallies = tallies
        self.by_id = {r.id: r for r in records}
        #: event id -> ``to_data()`` of its event, and that as a client reads it (``plain``)
        self.data = {r.id: r.event.to_data() for r in records}
        self.wire = {i: plain(d) for i, d in self.data.items()}
        self._audiences = [_audience(r, tallies=tallies) for r in records]
        self._votes: dict[str, dict[int, int]] = {}

    def admitted(self, participant: Participant) -> list[Record]:
        """The records ``participant`` is sent, in log order (:func:`sees` of each)."""
        return [
            r for r, a in zip(self.records, self._audiences, strict=True) if a.admits(participant)
        ]

    def votes(self, room_id: str) -> dict[int, int]:
        """:func:`final_votes` of the log for ``room_id``."""
        if room_id not in self._votes:
            self._votes[room_id] = final_votes(self.records, room_id)
        return self._votes[room_id]


def final_votes(records: Sequence[Record], room_id: str) -> dict[int, int]:
    """Votes per question the room keeps, as the folded log has them."""
    state = new_room(room_id)
    for record in records:
        evolve(state, record)
    return {q.question_id: q.votes for q in state.questions.values()}


def check_timeline(seat: Seat, log: RoomLog, views: dict[Any, Any], v: Verdict) -> None:
    """``seat`` received a greeting whose view is the log's fold, then exactly the events of
    the log it may see, in order, across every resume and fresh welcome; and it counts every
    question's votes as the log does."""
    records, tallies = log.records, log.tallies
    admitted = log.admitted(seat.participant)
    index = {r.id: i for i, r in enumerate(admitted)}
    who = seat.identity
    cursor: int | None = None  # position in ``admitted`` of the next expected event
    for entry in seat.timeline:
        if entry[0] == "welcome":
            last_id, room = entry[1], entry[2]
            if room != views.get((last_id, who)):
                v.fail(f"{who}: the welcome at {last_id} is not the log's fold")
            cursor = next((i for i, r in enumerate(admitted) if r.id > last_id), len(admitted))
        elif entry[0] == "resumed":
            if cursor is None:
                v.fail(f"{who}: resumed before any welcome")
        elif entry[0] == "tally":
            if not tallies or seat.participant.is_staff:
                v.fail(f"{who}: a tally where every vote is sent as an event")
        else:
            _, event_id, type_, data = entry
            if cursor is None:
                v.fail(f"{who}: event {event_id} before a greeting")
                return
            if cursor >= len(admitted) or admitted[cursor].id != event_id:
                expected = admitted[cursor].id if cursor < len(admitted) else None
                got = "a duplicate" if event_id in index and index[event_id] < cursor else "a gap"
                v.fail(f"{who}: received {event_id}, expected {expected} ({got})")
                return
            record = admitted[cursor]
            if type_ != record.event.type or data != log.wire[record.id]:
                v.fail(f"{who}: event {event_id} is not the log's")
            cursor += 1
    if cursor is None or cursor != len(admitted):
        v.fail(f"{who}: stopped at {cursor} of {len(admitted)} events it may see")
    if records and seat.votes != log.votes(seat.room):
        v.fail(f"{who}: counts votes {seat.votes}, the log {log.votes(seat.room)}")


def check_commands(student: Student, log: RoomLog, v: Verdict) -> None:
    """Each acked command's events are in the log where its ack said; every event the student
    caused belongs to an acked command, or (at most once) to one whose answer never came."""
    by_id = log.by_id
    who = student.identity
    mine: set[int] = set()
    for r in log.records:
        data = log.data[r.id]
        if data.get("identity") == who or data.get("from") == who:
            if r.event.type != "participant.joined":
                mine.add(r.id)
    acked: set[int] = set()
    maybe: list[Sent] = []
    for command in student.sent:
        v.acked += bool(command.acked_ids)
        v.unknown += command.unknown
        if command.unknown:
            maybe.append(command)
        for event_id in command.acked_ids:
            acked.add(event_id)
            record = by_id.get(event_id)
            if record is None or not _is_effect(record, log.data[event_id], command, who):
                v.fail(
                    f"{who}: {command.type} {command.fields} acked as {event_id}, not in the log"
                )
    for event_id in sorted(mine - acked):
        record = by_id[event_id]
        owners = [c for c in maybe if _is_effect(record, log.data[event_id], c, who)]
        if not owners:
            v.fail(f"{who}: event {event_id} {record.event.type} answers no command sent")
            continue
        maybe.remove(owners[0])  # an unanswered attempt takes effect at most once
        if any(o.code == "unavailable" for o in owners[0].outcomes):
            v.unavailable_done += 1


def _is_effect(record: Record, data: dict[str, Any], command: Sent, who: str) -> bool:
    """Whether ``record`` (whose event's ``to_data()`` is ``data``) is ``command``'s effect."""
    expected = {
        "question.upvote": "question.upvoted",
        "question.unvote": "question.unvoted",
        "poll.answer": "poll.answered",
        "chat.send": "chat.message",
    }.get(command.type)
    if record.event.type != expected:
        return False
    if command.type == "chat.send":
        return bool(data["from"] == who and data["text"] == command.fields["text"])
    if command.type == "poll.answer":
        return bool(
            data["poll_id"] == command.fields["poll_id"]
            and list(data["choices"]) == command.fields["choices"]
        )
    return bool(data["question_id"] == command.fields["question_id"])


def check_counts(
    students: Sequence[Student], records: Sequence[Record], room_id: str, v: Verdict
) -> None:
    """The folded log's voters and poll answers are exactly what the students' answers imply,
    and each closed poll's published tally counts each student's last answer once."""
    state = new_room(room_id)
    for record in records:
        evolve(state, record)
    for s in students:
        for question_id, voted in s.voted.items():
            if ("q", question_id) in s.unsure or question_id not in state.questions:
                continue
            if (s.identity in state.questions[question_id].voters) != voted:
                v.fail(f"{s.identity}: vote on question {question_id} should be {voted}")
        for poll_id, choices in s.answers.items():
            if ("p", poll_id) in s.unsure or poll_id not in state.polls:
                continue
            if list(state.polls[poll_id].answers.get(s.identity, ())) != choices:
                v.fail(f"{s.identity}: answer to poll {poll_id} should be {choices}")
    v.votes = sum(q.votes for q in state.questions.values())
    v.answers = sum(len(p.answers) for p in state.polls.values())
    for poll in state.polls.values():
        expected = Counter(c for choices in poll.answers.values() for c in choices)
        if poll.tally is not None and list(poll.tally) != [
            expected[k] for k in range(len(poll.options))
        ]:
            v.fail(f"poll {poll.poll_id}: published tally {poll.tally} is not its answers")
