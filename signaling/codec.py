"""The wire codec: binary WebSocket frames of MessagePack maps (docs/protocol.md).

Decoding turns one client frame into a :class:`Join`, :class:`Ping` or :class:`CommandFrame`,
checking every field against the documented schema; commands are built from the field types of
the ``rooms`` command dataclasses, so the schema has one home. Encoding builds server frames; an
event frame is encoded once per node and the same bytes go to every recipient.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgpack

from rooms import COMMANDS, Command, Record, is_room_id

from .errors import BadFieldType, BadFrame, ClientError, MissingField, UnknownType

#: Client -> server message types that are not room commands.
SESSION_TYPES: frozenset[str] = frozenset({"join", "ping"})

#: Client -> server media signaling types (SDP for the SFU; :mod:`signaling.media`).
MEDIA_TYPES: frozenset[str] = frozenset(
    {
        "media.publish",
        "media.unpublish",
        "media.subscribe",
        "media.answer",
        "media.candidate",
        "media.view",
    }
)

#: Client -> server requests about a board that change nothing in the room (answered on ``/ws``).
BOARD_REQUEST_TYPES: frozenset[str] = frozenset({"board.snapshot_link"})

#: Client -> server requests about a staff member's saved breakout groups, which belong to no
#: room's log (answered on ``/ws`` by the edge; :mod:`signaling.saved_groups`).
GROUPS_REQUEST_TYPES: frozenset[str] = frozenset(
    {"breakout.groups.save", "breakout.groups.list", "breakout.groups.delete"}
)

#: Every client -> server type the codec accepts.
CLIENT_TYPES: frozenset[str] = (
    SESSION_TYPES | frozenset(COMMANDS) | MEDIA_TYPES | BOARD_REQUEST_TYPES | GROUPS_REQUEST_TYPES
)

#: Every server -> client type the codec produces.
SERVER_TYPES: frozenset[str] = frozenset(
    {
        "welcome",
        "resumed",
        "ack",
        "error",
        "event",
        "presence",
        "tally",
        "pong",
        "reconnect",
        "media.offer",
        "media.reset",
        "media.layers",
        "view",
        "waiting",
    }
)


@dataclass(frozen=True, slots=True)
class Join:
    """``join``: the first frame of a connection (its token is left out of the repr: logs)."""

    token: str = dataclasses.field(repr=False)
    room: str
    last_id: int | None


@dataclass(frozen=True, slots=True)
class Ping:
    """``ping``: an application heartbeat; answered with ``pong``."""

    ref: int


@dataclass(frozen=True, slots=True)
class CommandFrame:
    """A room command with the client's ``ref``."""

    ref: int
    command: Command


@dataclass(frozen=True, slots=True)
class MediaFrame:
    """A media signaling frame: its ``type``, ``ref`` and checked fields."""

    type: str
    ref: int
    sdp: str | None = None
    sources: Mapping[str, str] | None = None
    version: int | None = None
    transport: str | None = None
    candidate: str | None = None
    sdp_mid: str | None = None
    source: str | None = None
    #: ``media.view``: ``"all"``, ``"none"`` or the producer ids whose video the client shows.
    video: str | tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class SnapshotLinkRequest:
    """``board.snapshot_link``: a short-lived download link for one saved snapshot."""

    ref: int
    board: str
    snapshot_id: int


@dataclass(frozen=True, slots=True)
class GroupsRequest:
    """``breakout.groups.save`` / ``list`` / ``delete``: its ``type``, ``ref``, and the fields
    as sent (``name``, ``rooms``, ``members``), checked by :mod:`signaling.saved_groups`."""

    type: str
    ref: int
    name: Any = None
    rooms: Any = None
    members: Any = None


ClientMessage = Join | Ping | CommandFrame | MediaFrame | SnapshotLinkRequest | GroupsRequest

_Check = Callable[[str, Any], Any]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_str(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise BadFieldType(f"{name} must be a string", field=name)
    return value


def _check_int(name: str, value: Any) -> int:
    if not _is_int(value):
        raise BadFieldType(f"{name} must be an integer", field=name)
    if not -(2**63) <= value < 2**63:
        raise BadFieldType(f"{name} is out of range", field=name)
    return int(value)


def _check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise BadFieldType(f"{name} must be a boolean", field=name)
    return value


_SCALARS: dict[Any, _Check] = {str: _check_str, int: _check_int, bool: _check_bool}
_MAX_ITEMS = 64
#: Entries of a map field (a breakout assignment: identity -> room).
_MAX_ENTRIES = 2000


def _checker_for(hint: Any) -> tuple[_Check, bool]:
    """Build a checker for one annotated field; returns (checker, accepts None)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) != 1:
            raise TypeError(f"unsupported union {hint!r}")
        check, _ = _checker_for(args[0])
        return check, True
    if origin is tuple:
        item_hint, ellipsis = typing.get_args(hint)
        if ellipsis is not Ellipsis:
            raise TypeError(f"unsupported tuple {hint!r}")
        item_check, _ = _checker_for(item_hint)

        def check_tuple(name: str, value: Any) -> tuple[Any, ...]:
            if not isinstance(value, list | tuple):
                raise BadFieldType(f"{name} must be an array", field=name)
            if len(value) > _MAX_ITEMS:
                raise BadFieldType(f"{name} has more than {_MAX_ITEMS} items", field=name)
            return tuple(item_check(name, item) for item in value)

        return check_tuple, False
    if origin is dict:
        key_hint, value_hint = typing.get_args(hint)
        key_check, _ = _checker_for(key_hint)
        value_check, value_nullable = _checker_for(value_hint)

        def check_value(name: str, value: Any) -> Any:
            if value is None and value_nullable:
                return None
            return value_check(name, value)

        def check_map(name: str, value: Any) -> dict[Any, Any]:
            if not isinstance(value, Mapping):
                raise BadFieldType(f"{name} must be a map", field=name)
            if len(value) > _MAX_ENTRIES:
                raise BadFieldType(f"{name} has more than {_MAX_ENTRIES} entries", field=name)
            return {key_check(name, k): check_value(name, v) for k, v in value.items()}

        return check_map, False
    return _SCALARS[hint], False


@dataclass(frozen=True, slots=True)
class _FieldSpec:
    name: str
    check: _Check
    nullable: bool
    required: bool


def _schema(cls: type[Command]) -> tuple[_FieldSpec, ...]:
    hints = typing.get_type_hints(cls)
    specs = []
    for f in dataclasses.fields(cls):
        check, nullable = _checker_for(hints[f.name])
        has_default = (
            f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        )
        specs.append(_FieldSpec(f.name, check, nullable, not has_default))
    return tuple(specs)


_SCHEMAS: dict[str, tuple[type[Command], tuple[_FieldSpec, ...]]] = {
    type_: (cls, _schema(cls)) for type_, cls in COMMANDS.items()
}


def _field(msg: Mapping[str, Any], spec: _FieldSpec, kwargs: dict[str, Any]) -> None:
    """Check one command field into ``kwargs``. An optional field may be absent or nil, alike
    (docs/protocol.md, "Transport"): a nullable one becomes None, one with a default keeps it."""
    value = msg.get(spec.name)
    if value is None:
        if spec.nullable:
            kwargs[spec.name] = None
        elif spec.required:
            if spec.name not in msg:
                raise MissingField(f"{spec.name} is required", field=spec.name)
            raise BadFieldType(f"{spec.name} must not be nil", field=spec.name)
        return
    kwargs[spec.name] = spec.check(spec.name, value)


def _ref(msg: Mapping[str, Any]) -> int:
    if "ref" not in msg:
        raise MissingField("ref is required", field="ref")
    return _check_int("ref", msg["ref"])


def unpack(frame: bytes) -> Mapping[str, Any]:
    """Unpack one binary frame into a message map.

    Raises:
        BadFrame: not MessagePack, trailing bytes, not a map, or ``t`` missing / not a string.
    """
    try:
        msg = msgpack.unpackb(frame, raw=False, strict_map_key=True, use_list=True)
    except Exception as exc:  # msgpack raises several unrelated exception types
        raise BadFrame("frame is not a MessagePack map") from exc
    if not isinstance(msg, dict):
        raise BadFrame("frame is not a MessagePack map")
    t = msg.get("t")
    if not isinstance(t, str):
        raise BadFrame("frame has no string field t")
    return msg


def decode(frame: bytes) -> ClientMessage:
    """Decode one client frame (docs/protocol.md).

    Returns:
        :class:`Join`, :class:`Ping`, :class:`CommandFrame`, :class:`MediaFrame` or
        :class:`SnapshotLinkRequest` or :class:`GroupsRequest`.

    Raises:
        BadFrame, UnknownType, MissingField, BadFieldType: with ``field`` naming the field.
    """
    msg = unpack(frame)
    t = msg["t"]
    if t == "join":
        if "token" not in msg:
            raise MissingField("token is required", field="token")
        if "room" not in msg:
            raise MissingField("room is required", field="room")
        last_id = msg.get("last_id")
        if last_id is not None:
            last_id = _check_int("last_id", last_id)
        room = _check_str("room", msg["room"])
        if not is_room_id(room):
            raise BadFieldType("room is 1-64 letters, digits, '_' or '-'", field="room")
        return Join(_check_str("token", msg["token"]), room, last_id)
    if t == "ping":
        return Ping(_ref(msg))
    if t in MEDIA_TYPES:
        return decode_media(msg, _ref(msg))
    if t == "board.snapshot_link":
        ref = _ref(msg)
        for name in ("board", "snapshot_id"):
            if name not in msg:
                raise MissingField(f"{name} is required", field=name)
        return SnapshotLinkRequest(
            ref, _check_str("board", msg["board"]), _check_int("snapshot_id", msg["snapshot_id"])
        )
    if t in GROUPS_REQUEST_TYPES:
        ref = _ref(msg)
        required = {"breakout.groups.save": ("name", "rooms", "members")}.get(
            t, ("name",) if t == "breakout.groups.delete" else ()
        )
        for name in required:
            if name not in msg:
                raise MissingField(f"{name} is required", field=name)
        return GroupsRequest(t, ref, msg.get("name"), msg.get("rooms"), msg.get("members"))
    entry = _SCHEMAS.get(t)
    if entry is None:
        raise UnknownType(f"unknown message type {t!r}", field="t")
    ref = _ref(msg)
    cls, specs = entry
    kwargs: dict[str, Any] = {}
    for spec in specs:
        _field(msg, spec, kwargs)
    return CommandFrame(ref, cls(**kwargs))


#: Most producer ids a ``media.view`` names (a page of tiles, and the screen shares).
MAX_VIEW_PRODUCERS = 64


def _video(msg: Mapping[str, Any]) -> str | tuple[str, ...]:
    if "video" not in msg:
        raise MissingField("video is required", field="video")
    video = msg["video"]
    if video in ("all", "none"):
        return str(video)
    if (
        not isinstance(video, list)
        or len(video) > MAX_VIEW_PRODUCERS
        or not all(isinstance(p, str) and 0 < len(p) <= 64 for p in video)
    ):
        raise BadFieldType(
            f'video is "all", "none" or a list of at most {MAX_VIEW_PRODUCERS} producer ids',
            field="video",
        )
    return tuple(dict.fromkeys(video))


#: Largest SDP accepted (bytes of UTF-8).
MAX_SDP_BYTES = 64 * 1024
_SOURCES = frozenset({"camera", "microphone", "screen"})


def _sdp(msg: Mapping[str, Any]) -> str:
    if "sdp" not in msg:
        raise MissingField("sdp is required", field="sdp")
    sdp = msg["sdp"]
    if not isinstance(sdp, str):
        raise BadFieldType("sdp must be a string", field="sdp")
    if len(sdp.encode()) > MAX_SDP_BYTES:
        raise BadFieldType(f"sdp is longer than {MAX_SDP_BYTES} bytes", field="sdp")
    return sdp


def decode_media(msg: Mapping[str, Any], ref: int) -> MediaFrame:
    """Check a media frame's fields (``t`` is one of :data:`MEDIA_TYPES`).

    Raises:
        MissingField, BadFieldType: naming the field.
    """
    t = msg["t"]
    if t == "media.subscribe":
        return MediaFrame(t, ref)
    if t == "media.candidate":
        return _candidate(msg, ref)
    if t == "media.view":
        return MediaFrame(t, ref, video=_video(msg))
    if t == "media.unpublish":
        source = msg.get("source")
        if source is None:
            raise MissingField("source is required", field="source")
        if not isinstance(source, str) or source not in _SOURCES:
            raise BadFieldType("source is camera, microphone or screen", field="source")
        return MediaFrame(t, ref, source=source)
    if t == "media.publish":
        sources = msg.get("sources")
        if sources is None:
            raise MissingField("sources is required", field="sources")
        if not isinstance(sources, dict) or len(sources) > 8:
            raise BadFieldType("sources must be a map of at most 8 mid -> source", field="sources")
        for mid, source in sources.items():
            if not isinstance(mid, str) or not isinstance(source, str) or source not in _SOURCES:
                raise BadFieldType(
                    "sources maps a mid to camera, microphone or screen", field="sources"
                )
        return MediaFrame(t, ref, sdp=_sdp(msg), sources=dict(sources))
    version = msg.get("version")
    if version is None:
        raise MissingField("version is required", field="version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise BadFieldType("version must be a positive integer", field="version")
    return MediaFrame(t, ref, sdp=_sdp(msg), version=version)


MAX_CANDIDATE_CHARS = 1024
_TRANSPORTS = frozenset({"publish", "subscribe"})


def _candidate(msg: Mapping[str, Any], ref: int) -> MediaFrame:
    transport, candidate = msg.get("transport"), msg.get("candidate")
    sdp_mid = msg.get("sdp_mid")
    if transport is None:
        raise MissingField("transport is required", field="transport")
    if not isinstance(transport, str) or len(transport) > 64:
        raise BadFieldType("transport must be a string", field="transport")
    if candidate is None:
        raise MissingField("candidate is required", field="candidate")
    if not isinstance(candidate, str) or len(candidate) > MAX_CANDIDATE_CHARS:
        raise BadFieldType(
            f"candidate must be a string of at most {MAX_CANDIDATE_CHARS} characters",
            field="candidate",
        )
    if sdp_mid is not None and (not isinstance(sdp_mid, str) or len(sdp_mid) > 64):
        raise BadFieldType("sdp_mid must be a string or nil", field="sdp_mid")
    return MediaFrame(
        "media.candidate", ref, transport=transport, candidate=candidate, sdp_mid=sdp_mid
    )


def peek_ref(frame: bytes) -> int | None:
    """Best-effort ``ref`` of a frame that failed to decode, so its error can name it."""
    try:
        msg = msgpack.unpackb(frame, raw=False)
    except Exception:
        return None
    if isinstance(msg, dict) and _is_int(msg.get("ref")) and -(2**63) <= msg["ref"] < 2**63:
        return int(msg["ref"])
    return None


def pack(message: Mapping[str, Any]) -> bytes:
    """Encode one server frame (a map with ``t``)."""
    return msgpack.packb(message, use_bin_type=True)


def encode_event(record: Record) -> bytes:
    """``event{id, ts, type, data}``: encoded once per event per node."""
    event = record.event
    return pack(
        {
            "t": "event",
            "id": record.id,
            "ts": record.ts,
            "type": event.type,
            "data": event.to_data(),
        }
    )


def encode_ack(ref: int, ids: Sequence[int]) -> bytes:
    return pack({"t": "ack", "ref": ref, "ids": list(ids)})


def encode_snapshot_link(ref: int, url: str) -> bytes:
    """The ``ack`` of ``board.snapshot_link``: ``url`` is the download path on this server."""
    return pack({"t": "ack", "ref": ref, "ids": [], "url": url})


def encode_groups(ref: int, groups: Sequence[Mapping[str, Any]]) -> bytes:
    """The ``ack`` of ``breakout.groups.list``: ``groups`` are ``{name, rooms, members}``."""
    return pack({"t": "ack", "ref": ref, "ids": [], "groups": list(groups)})


def encode_view(last_id: int, room: Mapping[str, Any]) -> bytes:
    """``view{last_id, room}``: the member's place changed; ``room`` replaces its RoomView, and
    the events after ``last_id`` follow (docs/protocol.md, "Breakout rooms")."""
    return pack({"t": "view", "last_id": last_id, "room": room})


def encode_error(error: ClientError | Exception, ref: int | None = None) -> bytes:
    """``error{code, message, ref, field, retry_after_ms}`` for a client or room error; every
    field is sent, nil when it has no value (docs/protocol.md, "Transport")."""
    code = getattr(error, "code", "internal")
    message = getattr(error, "message", None) or str(error) or code
    retry_after_ms = error.retry_after_ms if isinstance(error, ClientError) else None
    return pack(
        {
            "t": "error",
            "code": code,
            "message": message,
            "ref": ref,
            "field": getattr(error, "field", None),
            "retry_after_ms": retry_after_ms,
        }
    )


def encode_pong(ref: int, server_time_ms: int) -> bytes:
    return pack({"t": "pong", "ref": ref, "server_time_ms": server_time_ms})


def encode_reconnect(reason: str, retry_after_ms: int) -> bytes:
    return pack({"t": "reconnect", "reason": reason, "retry_after_ms": retry_after_ms})
