"""signaling.edge.fanout: one write per member, the same bytes for everyone when every event is
for everyone (invariant 4), and nothing a member's audience excludes or its greeting covered."""

from collections.abc import Sequence
from dataclasses import dataclass

from rooms import (
    Audience,
    ChatMessageEvent,
    Participant,
    PollAnsweredEvent,
    QuestionUpvotedEvent,
    Record,
    Role,
    audience_of,
)
from rooms.events import Event
from signaling.edge.fanout import Outgoing, plan_fanout


@dataclass(frozen=True)
class Member:
    participant: Participant


TEACHER = Member(Participant("t1", "Tess", Role.TEACHER))
SAM = Member(Participant("s1", "Sam", Role.STUDENT))
SUE = Member(Participant("s2", "Sue", Role.STUDENT))
EVERYONE = (TEACHER, SAM, SUE)


def out(record_id: int, event: Event) -> Outgoing:
    frame = f"frame{record_id}".encode()
    return Outgoing(Record(record_id, 0, event), frame, b"wire" + frame, audience_of(event))


def chat(record_id: int) -> Outgoing:
    return out(record_id, ChatMessageEvent("t1", "Tess", Role.TEACHER, f"line {record_id}", None))


def answer(record_id: int, identity: str) -> Outgoing:
    return out(record_id, PollAnsweredEvent(1, identity, (0,)))


def recipients(audience: Audience) -> Sequence[Member]:
    return [m for m in EVERYONE if audience.admits(m.participant)]


def writes(batch: list[Outgoing], covered: dict[Member, int] | None = None) -> dict[str, bytes]:
    plan = plan_fanout(batch, recipients, covered or {})
    result: dict[str, bytes] = {}
    for member, frames, wire in plan:
        assert member.participant.identity not in result  # at most one write per member
        assert wire == b"".join(b"wire" + f for f in frames)
        result[member.participant.identity] = wire
    return result


def test_events_for_everyone_share_one_buffer() -> None:
    batch = [chat(1), chat(2)]
    plan = list(plan_fanout(batch, recipients, {}))
    assert len(plan) == 3
    assert len({id(frames) for _, frames, _ in plan}) == 1
    assert len({id(wire) for _, _, wire in plan}) == 1


def test_private_events_reach_only_their_audience() -> None:
    result = writes([chat(1), answer(2, "s1"), chat(3)])
    assert result["t1"] == b"wireframe1wireframe2wireframe3"
    assert result["s1"] == b"wireframe1wireframe2wireframe3"
    assert result["s2"] == b"wireframe1wireframe3"


def test_a_single_private_event_is_not_written_to_others() -> None:
    assert writes([answer(5, "s2")]) == {"t1": b"wireframe5", "s2": b"wireframe5"}


def test_a_member_greeted_this_turn_gets_only_what_its_greeting_did_not_cover() -> None:
    assert writes([chat(1), chat(2), chat(3)], {SAM: 2})["s1"] == b"wireframe3"
    assert "s1" not in writes([chat(1), chat(2)], {SAM: 2})
    assert "s1" not in writes([chat(4)], {SAM: 4})
    assert writes([chat(5)], {SAM: 4})["s1"] == b"wireframe5"


def test_an_empty_turn_writes_nothing() -> None:
    assert writes([]) == {}


def test_a_vote_storm_in_a_large_room_shares_one_write_among_students_not_named() -> None:
    """A student's own vote joins the shared events in log order; the others share one buffer."""
    own_vote = out(2, QuestionUpvotedEvent(1, "s1"))
    routed = Outgoing(own_vote.record, own_vote.frame, own_vote.wire, Audience.staff_and("s1"))
    batch = [chat(1), routed, chat(3)]
    result = writes(batch)
    assert result["t1"] == b"wireframe1wireframe2wireframe3"
    assert result["s1"] == b"wireframe1wireframe2wireframe3"
    assert result["s2"] == b"wireframe1wireframe3"
    plan = list(plan_fanout([*batch, answer(4, "s1")], recipients, {}))
    assert [m.participant.identity for m, _, _ in plan] == ["t1", "s1", "s2"]


def test_a_flush_with_nothing_for_everyone_asks_only_for_the_members_it_names() -> None:
    """A poll-answer burst in a room of thousands must not visit every member per flush."""
    asked: list[Audience] = []

    def counting(audience: Audience) -> Sequence[Member]:
        asked.append(audience)
        return recipients(audience)

    plan = list(plan_fanout([answer(1, "s1"), answer(2, "s1")], counting, {}))
    assert Audience.ALL not in asked
    assert {m.participant.identity: wire for m, _, wire in plan} == {
        "t1": b"wireframe1wireframe2",
        "s1": b"wireframe1wireframe2",
    }
