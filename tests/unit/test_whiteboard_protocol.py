"""The y-websocket wire format (y-protocols sync/awareness/auth over lib0 encoding)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from whiteboard.protocol import (
    MAX_VAR_UINT,
    AwarenessEntry,
    AwarenessUpdate,
    MalformedMessage,
    PermissionDenied,
    QueryAwareness,
    SyncStep1,
    SyncStep2,
    SyncUpdate,
    TooManyEntries,
    encode_awareness,
    encode_permission_denied,
    encode_sync_step1,
    encode_sync_step2,
    encode_update,
    message_type,
    parse,
    write_var_uint,
)


@pytest.mark.parametrize(
    ("value", "encoded"),
    [(0, b"\x00"), (1, b"\x01"), (127, b"\x7f"), (128, b"\x80\x01"), (300, b"\xac\x02")],
)
def test_var_uint_is_lib0s_leb128(value: int, encoded: bytes) -> None:
    out = bytearray()
    write_var_uint(out, value)
    assert bytes(out) == encoded


@given(st.binary(max_size=300))
def test_sync_messages_round_trip(payload: bytes) -> None:
    assert parse(encode_sync_step1(payload)) == SyncStep1(payload)
    assert parse(encode_sync_step2(payload)) == SyncStep2(payload)
    assert parse(encode_update(payload)) == SyncUpdate(payload)


def test_bytes_a_yjs_client_sends_parse_as_expected() -> None:
    # y-websocket's first message: sync step 1 with the empty state vector.
    assert parse(b"\x00\x00\x01\x00") == SyncStep1(b"\x00")
    assert parse(b"\x03") == QueryAwareness()
    assert parse(b"\x02\x00\x03abc") == PermissionDenied("abc")
    assert parse(encode_permission_denied("no")) == PermissionDenied("no")


@given(
    st.lists(
        st.tuples(
            st.integers(0, 2**32),
            st.integers(0, 2**40),
            st.one_of(
                st.just("null"),
                st.dictionaries(st.text(max_size=5), st.integers()).map(json.dumps),
            ),
        ),
        max_size=5,
    )
)
def test_awareness_round_trips(entries: list[tuple[int, int, str]]) -> None:
    built = [AwarenessEntry(*e) for e in entries]
    assert parse(encode_awareness(built)) == AwarenessUpdate(tuple(built))


@pytest.mark.parametrize(
    ("data", "complaint"),
    [
        (b"", "truncated"),
        (b"\x80", "truncated"),
        (b"\xff" * 8 + b"\x7f", "53 bits"),
        (b"\x09", "unknown message type 9"),
        (b"\x00\x03\x00", "unknown sync subtype 3"),
        (b"\x00\x02\x05ab", "5 bytes announced, 2 left"),
        (b"\x00\x02\x00\x00", "1 bytes after"),
        (b"\x02\x01\x00", "unknown auth subtype"),
        (b"\x02\x00\x02\xff\xfe", "not UTF-8"),
        (encode_awareness([AwarenessEntry(1, 1, "{oops")]), "not JSON"),
        (b"\x01\x03\x02\x01\x01", "truncated"),
    ],
)
def test_malformed_messages_say_what_is_wrong(data: bytes, complaint: str) -> None:
    with pytest.raises(MalformedMessage, match=complaint):
        parse(data)


@settings(max_examples=500)
@given(st.binary(max_size=40))
def test_random_bytes_parse_or_raise_malformed_message_only(data: bytes) -> None:
    try:
        parse(data)
    except MalformedMessage:
        pass


def test_var_uint_out_of_range_is_refused_when_writing() -> None:
    with pytest.raises(ValueError):
        write_var_uint(bytearray(), MAX_VAR_UINT + 1)
    with pytest.raises(ValueError):
        write_var_uint(bytearray(), -1)


def test_an_awareness_update_announcing_too_many_entries_is_refused_before_reading_them() -> None:
    # The count says 900,000; the entries are not even there: the refusal comes first.
    payload = bytearray()
    write_var_uint(payload, 900_000)
    message = bytearray([1])
    write_var_uint(message, len(payload))
    message += payload
    with pytest.raises(TooManyEntries):
        parse(bytes(message))
    entries = [AwarenessEntry(i, 1, "null") for i in range(3)]
    with pytest.raises(TooManyEntries):
        parse(encode_awareness(entries), max_awareness_entries=2)
    assert parse(encode_awareness(entries), max_awareness_entries=3) == AwarenessUpdate(
        tuple(entries)
    )


def test_a_deeply_nested_awareness_state_is_malformed() -> None:
    with pytest.raises(MalformedMessage):
        parse(encode_awareness([AwarenessEntry(1, 1, "[" * 100_000)]))


def test_message_type_reads_only_the_first_var_uint() -> None:
    assert message_type(encode_awareness([AwarenessEntry(1, 1, "{}")])) == 1
    assert message_type(b"\x81\x00garbage") == 1  # a long form of 1 is still 1
    assert message_type(encode_update(b"\x00\x00")) == 0
    with pytest.raises(MalformedMessage):
        message_type(b"")
