"""Random bytes never crash the decoder or change state.

Property tests with a fixed seed: whatever arrives in a binary frame, ``signaling.codec.decode``
either returns a well-typed message or raises a ``ClientError`` (which the node turns into an
``error`` frame), and a decoded command run through ``rooms.decide`` either yields events or
raises a ``RoomError``, never anything else, and never writes the room's state.
"""

import copy
import dataclasses
import types
import typing
from typing import Any

import msgpack
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rooms import (
    COMMANDS,
    ChatSend,
    HandRaise,
    Participant,
    PollAnswer,
    PollOpen,
    QuestionAsk,
    QuestionUpvote,
    Role,
    RoomError,
    decide,
    room_view,
)
from signaling import CLIENT_TYPES, ClientError
from signaling.codec import (
    GROUPS_REQUEST_TYPES,
    MEDIA_TYPES,
    CommandFrame,
    GroupsRequest,
    Join,
    MediaFrame,
    Ping,
    decode,
    peek_ref,
)
from tests.unit.test_rooms_fold import ASSISTANT, OTHER, STUDENT, TEACHER, classroom

FUZZ = settings(
    derandomize=True,
    database=None,
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

STRANGER = Participant("x9", "Xan", Role.STUDENT)
ACTORS = (TEACHER, ASSISTANT, STUDENT, OTHER, STRANGER)
IDENTITIES = [p.identity for p in ACTORS] + ["staff", "", "nobody"]
FIELD_NAMES = sorted(
    {f.name for cls in COMMANDS.values() for f in dataclasses.fields(cls)}
    | {"token", "room", "last_id", "sdp", "sources", "version", "transport", "candidate", "sdp_mid"}
    | {"name", "rooms", "members"}
)
INT64 = (-(2**63), 2**63 - 1)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 5),
    st.integers(-(2**63), 2**64 - 1),
    st.floats(allow_nan=True),
    st.text(max_size=20),
    st.sampled_from(IDENTITIES),
    st.binary(max_size=8),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=12,
)
plausible = st.one_of(
    st.integers(0, 4),
    st.text(min_size=1, max_size=12),
    st.sampled_from(IDENTITIES),
    st.booleans(),
    st.none(),
    st.lists(st.integers(-1, 4), max_size=4),
    st.lists(st.text(min_size=1, max_size=5), min_size=2, max_size=4),
)
frame_types = st.sampled_from(sorted(CLIENT_TYPES)) | st.sampled_from(
    ["", "JOIN", "chat", "chat.send ", "hand.wave", "t", "\x00"]
)


@st.composite
def message_maps(draw: st.DrawFn) -> dict[Any, Any]:
    """A map with a random ``t``, a usually valid ``ref`` and random known and junk fields."""
    msg: dict[Any, Any] = {}
    if draw(st.integers(0, 19)):
        msg["t"] = draw(frame_types)
    else:
        msg["t"] = draw(values)
    if draw(st.integers(0, 9)):
        msg["ref"] = draw(st.integers(0, 1000) | values)
    for name in draw(st.lists(st.sampled_from(FIELD_NAMES), unique=True, max_size=6)):
        msg[name] = draw(plausible | values)
    msg.update(draw(st.dictionaries(st.text(max_size=4), values, max_size=2)))
    return msg


TEXTS = (
    st.sampled_from(IDENTITIES)
    | st.text(max_size=12)
    | st.sampled_from(["x" * n for n in (101, 201, 301, 501, 2001)])
)
SMALL_INTS = st.integers(-1, 4)


def plausible_value(hint: Any) -> st.SearchStrategy[Any]:
    """Mostly well-typed values for a command field annotated ``hint``, sometimes out of range."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        (inner,) = [a for a in typing.get_args(hint) if a is not type(None)]
        return st.none() | plausible_value(inner)
    if typing.get_origin(hint) is tuple:
        item = typing.get_args(hint)[0]
        return st.lists(TEXTS if item is str else SMALL_INTS, max_size=12)
    if hint is int:
        return SMALL_INTS | st.integers(*INT64)
    return TEXTS if hint is str else st.booleans()


@st.composite
def near_valid_commands(draw: st.DrawFn) -> dict[str, Any]:
    """A command map whose fields are mostly present and well typed, so ``decide`` sees it."""
    type_ = draw(st.sampled_from(sorted(COMMANDS)))
    cls = COMMANDS[type_]
    hints = typing.get_type_hints(cls)
    msg: dict[str, Any] = {"t": type_, "ref": draw(st.integers(0, 1000))}
    for f in dataclasses.fields(cls):
        kind = draw(st.integers(0, 19))
        if kind < 17:
            msg[f.name] = draw(plausible_value(hints[f.name]))
        elif kind < 19:
            msg[f.name] = draw(values)
    msg.update(draw(st.dictionaries(st.text(max_size=4), values, max_size=2)))
    return msg


def message_frames() -> st.SearchStrategy[bytes]:
    """Frames of random maps and of near-valid commands."""
    maps = message_maps() | near_valid_commands() | near_valid_commands()
    return maps.map(lambda m: msgpack.packb(m, use_bin_type=True))


def assert_well_typed(value: Any, hint: Any) -> None:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return
        (hint,) = [a for a in typing.get_args(hint) if a is not type(None)]
        origin = typing.get_origin(hint)
    if origin is tuple:
        assert isinstance(value, tuple)
        for item in value:
            assert_well_typed(item, typing.get_args(hint)[0])
    elif hint is int:
        assert type(value) is int and INT64[0] <= value <= INT64[1]
    else:
        assert type(value) is hint, f"{value!r} is not a {hint}"


def assert_valid_message(message: Any, raw: dict[str, Any]) -> None:
    """``message`` is what the protocol says ``raw`` means."""
    if isinstance(message, Join):
        assert raw["t"] == "join"
        assert type(message.token) is str and type(message.room) is str
        assert message.last_id is None or type(message.last_id) is int
        return
    assert type(message.ref) is int and INT64[0] <= message.ref <= INT64[1]
    assert message.ref == raw["ref"]
    if isinstance(message, Ping):
        assert raw["t"] == "ping"
        return
    if isinstance(message, MediaFrame):
        assert message.type == raw["t"] and message.type in MEDIA_TYPES
        if message.type in ("media.publish", "media.answer"):
            assert type(message.sdp) is str and message.sdp == raw["sdp"]
        if message.type == "media.unpublish":
            assert message.source in {"camera", "microphone", "screen"}
            assert message.source == raw["source"]
        if message.type == "media.publish":
            assert isinstance(message.sources, dict) and message.sources == raw["sources"]
            assert set(message.sources.values()) <= {"camera", "microphone", "screen"}
        if message.type == "media.answer":
            assert type(message.version) is int and message.version >= 1
        return
    if isinstance(message, GroupsRequest):
        # Its fields are checked when it is answered (signaling.saved_groups.check_group_set).
        assert message.type == raw["t"] and message.type in GROUPS_REQUEST_TYPES
        assert (message.name, message.rooms, message.members) == tuple(
            raw.get(name) for name in ("name", "rooms", "members")
        )
        return
    assert isinstance(message, CommandFrame)
    command = message.command
    assert type(command) is COMMANDS[raw["t"]]
    hints = typing.get_type_hints(type(command))
    for f in dataclasses.fields(command):
        assert_well_typed(getattr(command, f.name), hints[f.name])
        if f.name in raw and raw[f.name] is not None:
            expected = raw[f.name]
            assert getattr(command, f.name) == (
                tuple(expected) if isinstance(expected, list) else expected
            )


def busy_room() -> Any:
    """A fixed room with something for every command to act on."""
    room = classroom()
    room.do(STUDENT, ChatSend("hello"))
    room.do(STUDENT, ChatSend("psst", to="staff"))
    room.do(TEACHER, ChatSend("psst back", to="s1"))
    room.do(STUDENT, HandRaise())
    room.do(OTHER, HandRaise())
    room.do(OTHER, QuestionAsk("why?"))
    room.do(STUDENT, QuestionAsk("how?"))
    room.do(STUDENT, QuestionUpvote(1))
    room.do(TEACHER, PollOpen("pick", ("a", "b", "c"), False))
    room.do(TEACHER, PollOpen("many", ("x", "y"), True))
    room.do(STUDENT, PollAnswer(1, (2,)))
    return room


ROOM = busy_room()
PRISTINE = copy.deepcopy(ROOM.state)
PRISTINE_VIEWS = {p.identity: room_view(ROOM.state, p) for p in ACTORS}


@settings(FUZZ, max_examples=1000)
@given(st.binary(max_size=300))
def test_random_bytes_never_crash_the_decoder(data: bytes) -> None:
    try:
        decode(data)
    except ClientError:
        pass
    ref = peek_ref(data)
    assert ref is None or type(ref) is int


@FUZZ
@given(message_maps() | near_valid_commands())
def test_random_message_maps_decode_to_a_valid_message_or_a_client_error(
    msg: dict[Any, Any],
) -> None:
    data = msgpack.packb(msg, use_bin_type=True)
    try:
        message = decode(data)
    except ClientError as exc:
        assert exc.code in {"bad_frame", "unknown_type", "missing_field", "bad_field"}
        if exc.code in {"missing_field", "bad_field"}:
            assert exc.field in [*FIELD_NAMES, "ref"]
        return
    assert_valid_message(message, msg)


@settings(FUZZ, max_examples=600)
@given(message_frames(), st.sampled_from(ACTORS))
def test_random_frames_decided_against_a_room_raise_only_room_errors_and_never_mutate_it(
    data: bytes, actor: Participant
) -> None:
    try:
        message = decode(data)
    except ClientError:
        return
    if not isinstance(message, CommandFrame):
        return
    try:
        events = decide(ROOM.state, actor, message.command)
    except RoomError as exc:
        assert isinstance(exc.code, str) and exc.code
    else:
        assert isinstance(events, list)
    assert ROOM.state == PRISTINE
    assert {p.identity: room_view(ROOM.state, p) for p in ACTORS} == PRISTINE_VIEWS


@settings(FUZZ, max_examples=200)
@given(st.binary(min_size=1, max_size=64), message_frames())
def test_random_bytes_spliced_into_valid_frames_never_crash_the_decoder(
    junk: bytes, data: bytes
) -> None:
    for spliced in (junk + data, data + junk, data[: len(data) // 2] + junk):
        try:
            decode(spliced)
        except ClientError:
            pass
