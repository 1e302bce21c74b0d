"""What both Redis logs share (signaling.redis_log): one wake-up format for a room's records, a
node's presence and a board's updates, and the replica wait after a write."""

from __future__ import annotations

import logging
from typing import Any

import msgpack
import pytest

from rooms import ChatMessageEvent, Participant, Record, Role
from signaling.redis_log import (
    BoardWake,
    PresenceWake,
    RecordsWake,
    ReplicaWait,
    decode_wake,
    encode_presence,
    encode_records,
)

TS = 1_700_000_000_000
SAM = Participant("s1", "Sam", Role.STUDENT, True, True)


def cmsgpack(value: object) -> bytes:
    """msgpack as Redis's Lua ``cmsgpack.pack`` writes it: every string a msgpack str, binary
    or not."""
    payload: bytes = msgpack.packb(value, use_bin_type=False)
    return payload


def test_appended_records_come_back_as_records_numbered_from_the_first_id() -> None:
    events = [ChatMessageEvent("s1", "Sam", Role.STUDENT, t, None) for t in ("a", "b")]
    payload = encode_records(7, TS, [(e.type, msgpack.packb(e.to_data())) for e in events])
    assert decode_wake(payload) == RecordsWake([Record(7, TS, events[0]), Record(8, TS, events[1])])


def test_a_presence_delta_comes_back_with_its_participants_and_number() -> None:
    payload = encode_presence("node-a", [SAM], ["t1"], 3)
    assert decode_wake(payload) == PresenceWake("node-a", (SAM,), ("t1",), 3)


def test_a_presence_delta_written_by_a_script_reads_the_same() -> None:
    """The departure a heartbeat script publishes for a dead node (``cmsgpack``)."""
    payload = cmsgpack([1, "node-b", [], ["s1", "s2"], 0])
    assert decode_wake(payload) == PresenceWake("node-b", (), ("s1", "s2"), 0)


def test_a_board_wake_up_written_by_the_append_script_keeps_binary_updates_whole() -> None:
    updates = [b"\x00\xff\xfe binary", b"", bytes(range(256))]
    assert decode_wake(cmsgpack([2, 41, updates])) == BoardWake(41, updates)
    # Python's msgpack writes them as bin: the same wake-up.
    assert decode_wake(msgpack.packb([2, 41, updates])) == BoardWake(41, updates)


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"\xc1",  # never used in msgpack
        msgpack.packb({"kind": 0}),
        msgpack.packb([]),
        msgpack.packb([9, 1, []]),  # an unknown kind
        msgpack.packb([2, 1]),  # too short
        msgpack.packb([2, "1", [b"u"]]),  # a seq that is not an integer
        msgpack.packb([2, True, [b"u"]]),
        msgpack.packb([2, 1, [7]]),  # an update that is not a string
        msgpack.packb([0, 1, TS, [["no.such.event", msgpack.packb({})]]]),
        msgpack.packb([0, 1, TS, [[b"\xff", msgpack.packb({})]]]),  # a type that is not UTF-8
        msgpack.packb([1, "n", [msgpack.packb({"identity": 1})], [], 1]),  # a bad participant
        msgpack.packb([1, "n", [{"identity": "s1"}], [], 1]),  # a participant not packed
    ],
)
def test_anything_else_is_refused_with_a_value_error(payload: bytes) -> None:
    with pytest.raises(ValueError):
        decode_wake(payload)


class Pipe:
    """The commands a redis-py pipeline would queue."""

    def __init__(self) -> None:
        self.queued: list[tuple[Any, ...]] = []

    def execute_command(self, *args: Any) -> None:
        self.queued.append(args)


def test_the_replica_wait_queues_wait_for_its_replicas_and_timeout() -> None:
    pipe = Pipe()
    ReplicaWait(2, 250).queue(pipe)
    assert pipe.queued == [("WAIT", 2, 250)]
    unasked = Pipe()
    ReplicaWait(0, 250).queue(unasked)
    assert unasked.queued == []


def test_a_write_fewer_replicas_confirmed_is_counted_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    wait = ReplicaWait(2, 100)
    with caplog.at_level(logging.WARNING, logger="signaling.redis_log"):
        wait.confirm([b"appended", 2, 1], 1, "room r1: append 7")
        assert wait.unconfirmed == 0
        assert caplog.text == ""
        wait.confirm([b"appended", 1, 1], 1, "room r1: append 8")
    assert wait.unconfirmed == 1
    assert "room r1: append 8 acknowledged before a replica confirmed it (1 of 2)" in caplog.text


def test_without_replicas_nothing_is_read_from_the_replies() -> None:
    wait = ReplicaWait(0, 100)
    wait.confirm([b"only the write"], 1, "board r1/main: append")  # no WAIT reply at 1
    assert wait.unconfirmed == 0


def test_a_negative_replica_wait_is_refused() -> None:
    with pytest.raises(ValueError):
        ReplicaWait(-1, 100)
    with pytest.raises(ValueError):
        ReplicaWait(1, -5)
