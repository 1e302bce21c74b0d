"""The small parts of the signaling edge, without a network: the per-connection token bucket,
presence coalescing and audience, and the codec's field checks (docs/protocol.md)."""

import time
from typing import Any

import msgpack
import pytest

from rooms import COMMANDS, ChatSend, HandLower, Participant, PollAnswer, PollOpen, Role
from signaling.codec import CommandFrame, Join, Ping, decode, encode_error, peek_ref, unpack
from signaling.errors import (
    BadFieldType,
    BadFrame,
    ClientError,
    MissingField,
    NotJoined,
    RateLimited,
    UnknownType,
)
from signaling.presence import Presence, presence_frames
from signaling.ratelimit import TokenBucket

TEACHER = Participant("t1", "Tess", Role.TEACHER)
ASSISTANT = Participant("a1", "Ari", Role.ASSISTANT)
S1 = Participant("s1", "Sam", Role.STUDENT)
S2 = Participant("s2", "Sue", Role.STUDENT)
S3 = Participant("s3", "Sol", Role.STUDENT)


def frame(**msg: Any) -> bytes:
    return msgpack.packb(msg, use_bin_type=True)


# TokenBucket


def fresh_bucket(rate: float, burst: float) -> tuple[TokenBucket, float]:
    """A bucket and a start time; the bucket reads the monotonic clock once when it is built."""
    bucket = TokenBucket(rate, burst)
    return bucket, time.monotonic()


def test_bucket_allows_a_burst_then_refuses_with_the_wait_until_the_next_token() -> None:
    bucket, t0 = fresh_bucket(rate=5, burst=5)
    assert [bucket.take(t0) for _ in range(5)] == [0] * 5
    assert bucket.take(t0) == 200
    assert 99 <= bucket.take(t0 + 0.1) <= 100


def test_bucket_grants_a_token_once_the_announced_wait_has_passed() -> None:
    bucket, t0 = fresh_bucket(rate=5, burst=1)
    assert bucket.take(t0) == 0
    wait_ms = bucket.take(t0)
    assert wait_ms > 0
    assert bucket.take(t0 + wait_ms / 1000 + 0.001) == 0


def test_retrying_exactly_after_the_announced_wait_is_admitted() -> None:
    bucket, t0 = fresh_bucket(rate=3, burst=1)
    assert bucket.take(t0) == 0
    wait_ms = bucket.take(t0 + 0.1)  # 0.3 tokens saved: 233.3 ms to go, announced as 233
    assert bucket.take(t0 + 0.1 + wait_ms / 1000) == 0


def test_bucket_refill_is_capped_at_the_burst() -> None:
    bucket, t0 = fresh_bucket(rate=5, burst=3)
    later = t0 + 3600
    assert [bucket.take(later) for _ in range(4)] == [0, 0, 0, 200]


def test_bucket_admits_burst_plus_rate_times_duration_under_a_steady_flood() -> None:
    bucket, t0 = fresh_bucket(rate=5, burst=5)
    admitted = sum(bucket.take(t0 + i * 0.01) == 0 for i in range(1000))  # 100 frames/s for 10 s
    assert 5 + 5 * 10 - 1 <= admitted <= 5 + 5 * 10


def test_bucket_wait_is_at_least_one_millisecond() -> None:
    bucket, t0 = fresh_bucket(rate=1000, burst=1)
    assert bucket.take(t0) == 0
    assert bucket.take(t0 + 0.0009) >= 1


def test_refused_frames_do_not_spend_tokens() -> None:
    bucket, t0 = fresh_bucket(rate=10, burst=1)
    bucket.take(t0)
    for _ in range(50):
        assert bucket.take(t0 + 0.05) > 0
    assert bucket.take(t0 + 0.1 + 1e-6) == 0


# Presence


def test_join_and_leave_within_one_interval_cancel_out() -> None:
    presence = Presence(large_room=100)
    presence.connect(TEACHER)
    presence.take_changes()
    presence.connect(S1)
    presence.disconnect(S1)
    changes = presence.take_changes()
    assert (changes.joined, changes.left, changes.online) == ([], [], 1)


def test_leave_and_rejoin_within_one_interval_cancel_out() -> None:
    presence = Presence(large_room=100)
    presence.connect(S1)
    presence.take_changes()
    presence.disconnect(S1)
    presence.connect(S1)
    changes = presence.take_changes()
    assert (changes.joined, changes.left, changes.online) == ([], [], 1)


def test_changes_are_reported_once_and_then_cleared() -> None:
    presence = Presence(large_room=100)
    presence.connect(S1)
    presence.connect(S2)
    assert presence.pending
    first = presence.take_changes()
    assert [p.identity for p in first.joined] == ["s1", "s2"] and first.online == 2
    assert not presence.pending
    assert presence.take_changes().joined == []


def test_several_connections_of_one_identity_count_once() -> None:
    presence = Presence(large_room=100)
    presence.connect(S1)
    presence.connect(S1)
    presence.connect(S1)
    assert presence.online == 1
    assert [p.identity for p in presence.take_changes().joined] == ["s1"]
    presence.disconnect(S1)
    presence.disconnect(S1)
    assert presence.online == 1
    assert not presence.pending
    presence.disconnect(S1)
    changes = presence.take_changes()
    assert [p.identity for p in changes.left] == ["s1"] and changes.online == 0


def test_online_with_counts_a_joining_identity_once() -> None:
    presence = Presence(large_room=100)
    presence.connect(S1)
    assert presence.online_with(S1) == 1
    assert presence.online_with(S2) == 2


def large_room_presence() -> Presence:
    """More than ``large_room`` (2) online: a teacher, an assistant and three students."""
    presence = Presence(large_room=2)
    for p in (TEACHER, ASSISTANT, S1, S2, S3):
        presence.connect(p)
    return presence


def test_large_room_hides_students_from_students_presence_frames() -> None:
    presence = large_room_presence()
    assert not presence.students_see_everyone()
    frames = presence_frames(presence.take_changes(), presence.students_see_everyone())
    staff, students = frames["staff"], frames["students"]
    assert [p["identity"] for p in staff["joined"]] == ["t1", "a1", "s1", "s2", "s3"]
    assert [p["identity"] for p in students["joined"]] == ["t1", "a1"]
    assert staff["online"] == students["online"] == 5

    presence.disconnect(S1)
    presence.disconnect(ASSISTANT)
    frames = presence_frames(presence.take_changes(), presence.students_see_everyone())
    assert frames["staff"]["left"] == ["s1", "a1"]
    assert frames["students"]["left"] == ["a1"]
    assert frames["students"]["online"] == 3


def test_small_room_sends_students_the_same_frame_as_staff() -> None:
    presence = Presence(large_room=100)
    presence.connect(TEACHER)
    presence.connect(S1)
    frames = presence_frames(presence.take_changes(), presence.students_see_everyone())
    assert frames["students"] is frames["staff"]
    assert frames["staff"] == {
        "t": "presence",
        "joined": [TEACHER.to_wire(), S1.to_wire()],
        "left": [],
        "online": 2,
    }


def test_large_room_roster_shows_students_only_staff_and_staff_everyone() -> None:
    presence = large_room_presence()
    assert [p["identity"] for p in presence.roster_for(S1)] == ["t1", "a1"]
    assert [p["identity"] for p in presence.roster_for(ASSISTANT)] == ["t1", "a1", "s1", "s2", "s3"]


def test_joining_roster_lists_the_viewer_and_counts_it_toward_large_room() -> None:
    presence = Presence(large_room=2)
    presence.connect(TEACHER)
    presence.connect(S1)
    assert [p["identity"] for p in presence.roster_for(S2, joining=True)] == ["t1"]
    assert [p["identity"] for p in presence.roster_for(S2)] == ["t1", "s1"]


# Codec field checks


@pytest.mark.parametrize(
    ("msg", "field"),
    [
        ({"t": "question.upvote", "ref": 1, "question_id": True}, "question_id"),
        ({"t": "question.upvote", "ref": 1, "question_id": 1.0}, "question_id"),
        ({"t": "question.upvote", "ref": 1, "question_id": "1"}, "question_id"),
        ({"t": "question.upvote", "ref": 1, "question_id": 2**64 - 1}, "question_id"),
        ({"t": "question.pin", "ref": 1, "question_id": 1, "pinned": 1}, "pinned"),
        ({"t": "room.lock", "ref": 1, "locked": "true"}, "locked"),
        ({"t": "question.ask", "ref": 1, "text": b"bytes"}, "text"),
        ({"t": "ping", "ref": True}, "ref"),
        ({"t": "chat.send", "ref": "1", "text": "hi"}, "ref"),
        ({"t": "join", "token": "x", "room": 5}, "room"),
        ({"t": "join", "token": None, "room": "r"}, "token"),
        ({"t": "join", "token": "x", "room": "r", "last_id": False}, "last_id"),
    ],
    ids=lambda v: v if isinstance(v, str) else f"{v['t']}",
)
def test_wrongly_typed_field_is_bad_field_naming_it(msg: dict[str, Any], field: str) -> None:
    with pytest.raises(BadFieldType) as refused:
        decode(frame(**msg))
    assert refused.value.code == "bad_field"
    assert refused.value.field == field


@pytest.mark.parametrize(
    "msg",
    [
        {"t": "question.ask", "ref": 1, "text": None},
        {"t": "question.pin", "ref": 1, "question_id": None, "pinned": True},
        {"t": "poll.open", "ref": 1, "question": "q", "options": None, "multiple": False},
        {"t": "chat.mute", "ref": 1, "muted": None},
        {"t": "ping", "ref": None},
    ],
    ids=lambda m: m["t"],
)
def test_nil_where_the_protocol_does_not_allow_it_is_bad_field(msg: dict[str, Any]) -> None:
    nil_field = next(key for key, value in msg.items() if value is None)
    with pytest.raises(BadFieldType) as refused:
        decode(frame(**msg))
    assert refused.value.field == nil_field


def test_nil_is_accepted_where_the_protocol_allows_it() -> None:
    sent = decode(frame(t="chat.send", ref=1, text="hi", to=None))
    assert sent == CommandFrame(1, ChatSend("hi", None))
    assert decode(frame(t="hand.lower", ref=2, identity=None)) == CommandFrame(2, HandLower(None))
    assert decode(frame(t="join", token="x", room="r", last_id=None)) == Join("x", "r", None)


@pytest.mark.parametrize(
    ("absent", "nil"),
    [
        ({"t": "chat.send", "text": "hi"}, {"t": "chat.send", "text": "hi", "to": None}),
        ({"t": "hand.lower"}, {"t": "hand.lower", "identity": None}),
        (
            {"t": "breakout.move", "identity": "s1"},
            {"t": "breakout.move", "identity": "s1", "room": None},
        ),
        ({"t": "session.end"}, {"t": "session.end", "reason": None}),
        (
            {"t": "participant.remove", "identity": "s1"},
            {"t": "participant.remove", "identity": "s1", "reason": None},
        ),
        (
            {"t": "join", "token": "x", "room": "r"},
            {"t": "join", "token": "x", "room": "r", "last_id": None},
        ),
    ],
    ids=lambda m: f"{m['t']}" if isinstance(m, dict) else str(m),
)
def test_an_optional_field_absent_or_nil_decodes_alike(
    absent: dict[str, Any], nil: dict[str, Any]
) -> None:
    """docs/protocol.md, "Transport": an optional field may be left out or sent nil."""
    ref = {} if absent["t"] == "join" else {"ref": 1}
    assert decode(frame(**absent, **ref)) == decode(frame(**nil, **ref))


def test_an_error_frame_carries_every_field_nil_when_unset() -> None:
    """docs/protocol.md, "Transport": the server never leaves a documented field out."""
    sent = unpack(encode_error(NotJoined("send join first")))
    assert sent == {
        "t": "error",
        "code": "not_joined",
        "message": "send join first",
        "ref": None,
        "field": None,
        "retry_after_ms": None,
    }
    limited = unpack(encode_error(RateLimited("slow down", retry_after_ms=50), 7))
    assert (limited["ref"], limited["field"], limited["retry_after_ms"]) == (7, None, 50)


@pytest.mark.parametrize(
    ("msg", "field"),
    [
        ({"t": "poll.open", "question": "q", "options": [1, 2], "multiple": False}, "options"),
        ({"t": "poll.open", "question": "q", "options": ["a", None], "multiple": False}, "options"),
        ({"t": "poll.open", "question": "q", "options": "ab", "multiple": False}, "options"),
        ({"t": "poll.open", "question": "q", "options": {"a": "b"}, "multiple": False}, "options"),
        ({"t": "poll.answer", "poll_id": 1, "choices": ["0"]}, "choices"),
        ({"t": "poll.answer", "poll_id": 1, "choices": [True]}, "choices"),
        ({"t": "poll.answer", "poll_id": 1, "choices": [[0]]}, "choices"),
        ({"t": "poll.answer", "poll_id": 1, "choices": 0}, "choices"),
        ({"t": "poll.answer", "poll_id": 1, "choices": list(range(65))}, "choices"),
    ],
    ids=lambda v: v if isinstance(v, str) else repr(next(reversed(v.values())))[:20],
)
def test_array_of_wrong_item_types_is_bad_field(msg: dict[str, Any], field: str) -> None:
    with pytest.raises(BadFieldType) as refused:
        decode(frame(ref=1, **msg))
    assert refused.value.field == field


def test_arrays_of_the_right_item_types_decode_to_tuples() -> None:
    opened = decode(frame(t="poll.open", ref=1, question="q", options=["a", "b"], multiple=True))
    assert opened == CommandFrame(1, PollOpen("q", ("a", "b"), True))
    answered = decode(frame(t="poll.answer", ref=2, poll_id=1, choices=[1, 0]))
    assert answered == CommandFrame(2, PollAnswer(1, (1, 0)))


@pytest.mark.parametrize("type_", sorted(COMMANDS))
def test_command_without_ref_is_missing_field_ref(type_: str) -> None:
    with pytest.raises(MissingField) as refused:
        decode(frame(t=type_))
    assert refused.value.field == "ref"


def test_ping_without_ref_is_missing_field_ref() -> None:
    with pytest.raises(MissingField) as refused:
        decode(frame(t="ping"))
    assert refused.value.field == "ref"


REQUIRED = [
    ("chat.send", "text"),
    ("question.ask", "text"),
    ("question.upvote", "question_id"),
    ("question.pin", "pinned"),
    ("poll.open", "options"),
    ("poll.answer", "choices"),
    ("poll.close", "poll_id"),
    ("chat.mute", "muted"),
    ("participant.remove", "identity"),
    ("room.lock", "locked"),
    ("join", "token"),
    ("join", "room"),
]
VALID = {
    "chat.send": {"text": "hi"},
    "question.ask": {"text": "why?"},
    "question.upvote": {"question_id": 1},
    "question.pin": {"question_id": 1, "pinned": True},
    "poll.open": {"question": "q", "options": ["a", "b"], "multiple": False},
    "poll.answer": {"poll_id": 1, "choices": [0]},
    "poll.close": {"poll_id": 1},
    "chat.mute": {"muted": True},
    "participant.remove": {"identity": "s1"},
    "room.lock": {"locked": True},
    "join": {"token": "x", "room": "r"},
}


@pytest.mark.parametrize(("type_", "field"), REQUIRED, ids=[f"{t}-{f}" for t, f in REQUIRED])
def test_missing_required_field_is_missing_field_naming_it(type_: str, field: str) -> None:
    msg = {"t": type_, "ref": 1, **VALID[type_]}
    decode(frame(**msg))  # complete, it decodes
    del msg[field]
    with pytest.raises(MissingField) as refused:
        decode(frame(**msg))
    assert refused.value.code == "missing_field"
    assert refused.value.field == field


def test_optional_fields_may_be_absent() -> None:
    assert decode(frame(t="participant.remove", ref=1, identity="s1")).command.reason == ""
    assert decode(frame(t="session.end", ref=2)).command.reason == ""
    assert decode(frame(t="chat.mute", ref=3, muted=True)).command.identity is None


def test_unknown_keys_are_ignored() -> None:
    assert decode(frame(t="ping", ref=1, zzz=[1, {"x": None}])) == Ping(1)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xc1",
        b"\x93\x01\x02\x03",
        frame(ref=1),
        frame(t=5, ref=1),
        frame(t=None),
        frame(t="ping", ref=1) + b"\x00",
        msgpack.packb({1: 2, "t": "ping", "ref": 1}),
        b"\xa3\xff\xfe\xfd",
    ],
    ids=[
        "empty",
        "reserved-byte",
        "array",
        "no-t",
        "t-int",
        "t-nil",
        "trailing",
        "int-key",
        "utf8",
    ],
)
def test_frame_that_is_not_a_map_with_a_string_t_is_bad_frame(data: bytes) -> None:
    with pytest.raises(BadFrame):
        decode(data)


def test_unknown_type_is_unknown_type() -> None:
    with pytest.raises(UnknownType) as refused:
        decode(frame(t="hand.wave", ref=1))
    assert refused.value.code == "unknown_type"


def test_peek_ref_finds_the_ref_of_a_frame_that_failed_to_decode() -> None:
    assert peek_ref(frame(t="question.upvote", ref=7, question_id="x")) == 7
    assert peek_ref(frame(t=5, ref=8)) == 8
    assert peek_ref(frame(t="ping", ref=True)) is None
    assert peek_ref(frame(t="ping", ref=2**64 - 1)) is None
    assert peek_ref(b"\xc1") is None
    assert peek_ref(msgpack.packb([1])) is None


def test_error_frame_names_code_ref_field_and_retry_after() -> None:
    bad = msgpack.unpackb(encode_error(BadFieldType("nope", field="text"), 4))
    assert bad == {
        "t": "error",
        "code": "bad_field",
        "message": "nope",
        "ref": 4,
        "field": "text",
        "retry_after_ms": None,
    }
    limited = msgpack.unpackb(encode_error(RateLimited("slow down", retry_after_ms=150)))
    assert limited["code"] == "rate_limited" and limited["retry_after_ms"] == 150
    assert limited["ref"] is None
    assert msgpack.unpackb(encode_error(ClientError("boom")))["code"] == "internal"
