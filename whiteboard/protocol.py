"""The y-websocket wire protocol: sync (y-protocols/sync.js), awareness (y-protocols/awareness.js)
and auth (y-protocols/auth.js), one message per binary WebSocket frame.

Encoding is lib0's (lib0/encoding.js): a varUint is unsigned LEB128 (7 bits a byte, low bits first,
high bit set on every byte but the last); a byte array is a varUint length then the bytes; a string
is a byte array of UTF-8. A message is a varUint type, then:

- ``0`` sync: a varUint subtype (``0`` step 1 with a state vector, ``1`` step 2 with an update,
  ``2`` update) and a byte array.
- ``1`` awareness: a byte array holding an awareness update: a varUint count, then per client a
  varUint client id, a varUint clock and a string of JSON (``"null"`` when the client is gone).
- ``2`` auth: a varUint subtype (``0`` permission denied) and a reason string. Server to client.
- ``3`` query awareness: no payload.

:func:`parse` reads exactly one message and raises :class:`MalformedMessage` for anything else
(trailing bytes included); the ``encode_*`` functions build messages. Pure code: no I/O.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

SYNC = 0
AWARENESS = 1
AUTH = 2
QUERY_AWARENESS = 3

SYNC_STEP1 = 0
SYNC_STEP2 = 1
SYNC_UPDATE = 2

AUTH_PERMISSION_DENIED = 0

#: lib0 reads varUints into JavaScript numbers: more than 53 bits cannot round-trip.
MAX_VAR_UINT = 2**53 - 1
#: Most entries one awareness message may carry. A client sends its own state and echoes the
#: changes it heard from others (y-websocket does): far fewer than this in any class, while a
#: message of 64 KiB could otherwise announce about 9,000 client ids.
MAX_AWARENESS_ENTRIES = 1024
#: The update that changes nothing (no structs, empty delete set), as Yjs encodes it.
EMPTY_UPDATE = b"\x00\x00"


class MalformedMessage(ValueError):
    """Bytes that are not one well-formed y-websocket message; ``str()`` says what is wrong."""


class TooManyEntries(MalformedMessage):
    """An awareness update announcing more entries than allowed (refused before reading them)."""


@dataclass(frozen=True, slots=True)
class SyncStep1:
    """Sync step 1: the sender's state vector; answered with step 2."""

    state_vector: bytes


@dataclass(frozen=True, slots=True)
class SyncStep2:
    """Sync step 2: the update the receiver lacks (the answer to step 1)."""

    update: bytes


@dataclass(frozen=True, slots=True)
class SyncUpdate:
    """An incremental document update."""

    update: bytes


@dataclass(frozen=True, slots=True)
class AwarenessEntry:
    """One client's awareness: ``state`` is the JSON text, ``"null"`` when the client left."""

    client_id: int
    clock: int
    state: str

    @property
    def removed(self) -> bool:
        return self.state == "null"


@dataclass(frozen=True, slots=True)
class AwarenessUpdate:
    """An awareness message: its entries, in the order sent."""

    entries: tuple[AwarenessEntry, ...]


@dataclass(frozen=True, slots=True)
class QueryAwareness:
    """A request for every current awareness state."""


@dataclass(frozen=True, slots=True)
class PermissionDenied:
    """Auth: the server refused the sender's write; ``reason`` says why."""

    reason: str


Message = SyncStep1 | SyncStep2 | SyncUpdate | AwarenessUpdate | QueryAwareness | PermissionDenied


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def var_uint(self, what: str) -> int:
        value = 0
        shift = 0
        data = self.data
        while True:
            if self.pos >= len(data):
                raise MalformedMessage(f"{what}: truncated varUint")
            byte = data[self.pos]
            self.pos += 1
            value |= (byte & 0x7F) << shift
            if value > MAX_VAR_UINT:
                raise MalformedMessage(f"{what}: varUint over 53 bits")
            if byte < 0x80:
                return value
            shift += 7

    def var_bytes(self, what: str) -> bytes:
        length = self.var_uint(f"{what} length")
        end = self.pos + length
        if end > len(self.data):
            raise MalformedMessage(
                f"{what}: {length} bytes announced, {len(self.data) - self.pos} left"
            )
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def var_string(self, what: str) -> str:
        raw = self.var_bytes(what)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedMessage(f"{what}: not UTF-8") from exc

    def end(self) -> None:
        if self.pos != len(self.data):
            raise MalformedMessage(f"{len(self.data) - self.pos} bytes after the message")


def message_type(data: bytes) -> int:
    """The type of the message in ``data`` (its first varUint), read without parsing the rest, so
    a size limit per type applies before anything is allocated.

    Raises:
        MalformedMessage: no varUint at the start.
    """
    return _Reader(data).var_uint("message type")


def parse(data: bytes, *, max_awareness_entries: int = MAX_AWARENESS_ENTRIES) -> Message:
    """Read one message.

    Raises:
        MalformedMessage: truncated data, a varUint over 53 bits, an unknown type or subtype,
            awareness state that is not JSON, or bytes after the message.
        TooManyEntries: an awareness update with more than ``max_awareness_entries`` entries.
    """
    reader = _Reader(data)
    kind = reader.var_uint("message type")
    message: Message
    if kind == SYNC:
        sub = reader.var_uint("sync subtype")
        payload = reader.var_bytes("sync payload")
        if sub == SYNC_STEP1:
            message = SyncStep1(payload)
        elif sub == SYNC_STEP2:
            message = SyncStep2(payload)
        elif sub == SYNC_UPDATE:
            message = SyncUpdate(payload)
        else:
            raise MalformedMessage(f"unknown sync subtype {sub}")
    elif kind == AWARENESS:
        message = parse_awareness(reader.var_bytes("awareness update"), max_awareness_entries)
    elif kind == AUTH:
        sub = reader.var_uint("auth subtype")
        if sub != AUTH_PERMISSION_DENIED:
            raise MalformedMessage(f"unknown auth subtype {sub}")
        message = PermissionDenied(reader.var_string("auth reason"))
    elif kind == QUERY_AWARENESS:
        message = QueryAwareness()
    else:
        raise MalformedMessage(f"unknown message type {kind}")
    reader.end()
    return message


def parse_awareness(update: bytes, max_entries: int = MAX_AWARENESS_ENTRIES) -> AwarenessUpdate:
    """Read an awareness update (the payload of an awareness message).

    Raises:
        MalformedMessage: as :func:`parse`; a state must be JSON text (clients ``JSON.parse`` it).
        TooManyEntries: the count is over ``max_entries`` (checked before any entry is read).
    """
    reader = _Reader(update)
    count = reader.var_uint("awareness count")
    if count > max_entries:
        raise TooManyEntries(f"awareness updates carry at most {max_entries} entries, not {count}")
    entries = []
    for _ in range(count):
        client_id = reader.var_uint("awareness client id")
        clock = reader.var_uint("awareness clock")
        state = reader.var_string("awareness state")
        if state != "null":
            try:
                json.loads(state)
            except (ValueError, RecursionError) as exc:
                raise MalformedMessage(
                    f"awareness state of client {client_id} is not JSON"
                ) from exc
        entries.append(AwarenessEntry(client_id, clock, state))
    reader.end()
    return AwarenessUpdate(tuple(entries))


def write_var_uint(out: bytearray, value: int) -> None:
    """Append ``value`` (0 to 2**53 - 1) as a varUint."""
    if not 0 <= value <= MAX_VAR_UINT:
        raise ValueError(f"varUint out of range: {value}")
    while value > 0x7F:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    out.append(value)


def write_var_bytes(out: bytearray, data: bytes) -> None:
    write_var_uint(out, len(data))
    out += data


def _sync(sub: int, payload: bytes) -> bytes:
    out = bytearray((SYNC, sub))
    write_var_bytes(out, payload)
    return bytes(out)


def encode_sync_step1(state_vector: bytes) -> bytes:
    return _sync(SYNC_STEP1, state_vector)


def encode_sync_step2(update: bytes) -> bytes:
    return _sync(SYNC_STEP2, update)


def encode_update(update: bytes) -> bytes:
    return _sync(SYNC_UPDATE, update)


def encode_awareness(entries: tuple[AwarenessEntry, ...] | list[AwarenessEntry]) -> bytes:
    """An awareness message holding ``entries``."""
    update = bytearray()
    write_var_uint(update, len(entries))
    for entry in entries:
        write_var_uint(update, entry.client_id)
        write_var_uint(update, entry.clock)
        write_var_bytes(update, entry.state.encode("utf-8"))
    out = bytearray((AWARENESS,))
    write_var_bytes(out, bytes(update))
    return bytes(out)


def encode_permission_denied(reason: str) -> bytes:
    out = bytearray((AUTH, AUTH_PERMISSION_DENIED))
    write_var_bytes(out, reason.encode("utf-8"))
    return bytes(out)
