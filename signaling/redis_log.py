"""What both logs on Redis Cluster share: a room's events (:mod:`signaling.redis_store`) and a
board's updates (:mod:`whiteboard.redis_store`).

**The replica wait.** Redis replicates asynchronously, so a write acknowledged by the master alone
can be lost in a failover. After each write the store sends ``WAIT <replicas> <timeout ms>`` on the
same connection (:meth:`ReplicaWait.queue`), and acknowledges once WAIT returns. When fewer
replicas confirmed in time the write is acknowledged anyway (a cluster whose replica is down keeps
serving), counted and logged (:meth:`ReplicaWait.confirm`).

**The wake-up.** Each append is announced on a sharded pub/sub channel (SPUBLISH) so that other
nodes deliver it without polling the stream; the stream stays the truth, and a reader that cannot
read a wake-up reads the stream instead. Every wake-up is one msgpack array whose first item is its
kind:

- ``[0, first_id, ts, [[type, data], ...]]``: a room's appended events, ids from ``first_id``,
  appended at ``ts`` (epoch ms); ``data`` is the event's msgpack map (:class:`RecordsWake`);
- ``[1, node, [participant, ...], [identity, ...], seq]``: one node's presence delta in a room,
  each participant a msgpack map of :meth:`rooms.Participant.to_wire`; ``seq`` is the node's
  announcement number, 0 when the node left the room or died (:class:`PresenceWake`);
- ``[2, first_seq, [update, ...]]``: a board's appended Yjs updates, seqs from ``first_seq``
  (:class:`BoardWake`).

Scripts build some of them with Redis's ``cmsgpack``, which writes every Lua string as a msgpack
str, binary or not; so :func:`decode_wake` reads every string as bytes and decodes the text fields
(type, node, identity) as UTF-8 itself. Python writes binary fields as msgpack bin; both read the
same.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgpack

from rooms import Participant, Record, event_from_data

log = logging.getLogger(__name__)

#: The first item of a wake-up: what it carries.
WAKE_RECORDS = 0
WAKE_PRESENCE = 1
WAKE_BOARD = 2


class ReplicaWait:
    """``WAIT`` for replicas after a write, on the write's own connection.

    Args:
        replicas: replicas that must hold a write before it is acknowledged (0: no WAIT).
        timeout_ms: how long to wait for them (ms); WAIT returns after it with the count so far.

    Raises:
        ValueError: a negative ``replicas`` or ``timeout_ms``.
    """

    def __init__(self, replicas: int = 1, timeout_ms: int = 100) -> None:
        if replicas < 0 or timeout_ms < 0:
            raise ValueError(f"replicas and timeout_ms must be >= 0, not {replicas}, {timeout_ms}")
        self.replicas = replicas
        self.timeout_ms = timeout_ms
        #: Writes acknowledged before ``replicas`` replicas confirmed them.
        self.unconfirmed = 0

    def queue(self, pipe: Any) -> None:
        """Queue ``WAIT`` on ``pipe`` (a redis-py pipeline on the connection that wrote), unless
        no replica is asked for."""
        if self.replicas:
            pipe.execute_command("WAIT", self.replicas, self.timeout_ms)

    def confirm(self, replies: Sequence[Any], at: int, what: str) -> None:
        """Check WAIT's reply, ``replies[at]`` (nothing is checked when no WAIT was queued): when
        fewer replicas confirmed than asked, count it and log ``what`` (e.g. ``"room r1: append
        7"``) as acknowledged before a replica confirmed it."""
        if not self.replicas:
            return
        confirmed = int(replies[at])
        if confirmed < self.replicas:
            self.unconfirmed += 1
            log.warning(
                "%s acknowledged before a replica confirmed it (%s of %s)",
                what,
                confirmed,
                self.replicas,
            )


@dataclass(frozen=True, slots=True)
class RecordsWake:
    """A room's appended records, in id order."""

    records: list[Record]


@dataclass(frozen=True, slots=True)
class PresenceWake:
    """One node's presence delta in a room."""

    node: str
    joined: tuple[Participant, ...]
    left: tuple[str, ...]
    #: The node's announcement number (from 1, per room); 0: the node left or died.
    seq: int


@dataclass(frozen=True, slots=True)
class BoardWake:
    """A board's appended updates: ``updates[i]`` has seq ``first_seq + i``."""

    first_seq: int
    updates: list[bytes]


Wake = RecordsWake | PresenceWake | BoardWake


def encode_records(first_id: int, ts: int, events: Sequence[tuple[str, bytes]]) -> bytes:
    """The wake-up for events appended with ids from ``first_id`` at ``ts`` (epoch ms), each
    ``(type, msgpack of its data)``."""
    payload: bytes = msgpack.packb([WAKE_RECORDS, first_id, ts, [list(e) for e in events]])
    return payload


def encode_presence(
    node: str, joined: Sequence[Participant], left: Sequence[str], seq: int
) -> bytes:
    """The wake-up for node ``node``'s presence delta number ``seq`` (``left``: identities)."""
    payload: bytes = msgpack.packb(
        [WAKE_PRESENCE, node, [msgpack.packb(p.to_wire()) for p in joined], list(left), seq]
    )
    return payload


def decode_wake(payload: bytes) -> Wake:
    """Decode a wake-up (the shapes are in the module's docstring).

    Raises:
        ValueError: ``payload`` is not one of them.
    """
    try:
        message = msgpack.unpackb(payload, raw=True)
        if not isinstance(message, list) or not message:
            raise ValueError("not a msgpack array")
        kind = message[0]
        if kind == WAKE_RECORDS:
            _, first, ts, entries = message
            return RecordsWake(
                [
                    Record(_int(first) + i, _int(ts), event_from_data(_text(t), msgpack.unpackb(d)))
                    for i, (t, d) in enumerate(entries)
                ]
            )
        if kind == WAKE_PRESENCE:
            _, node, joined, left, seq = message
            return PresenceWake(
                _text(node),
                tuple(Participant.from_wire(msgpack.unpackb(_bytes(p))) for p in joined),
                tuple(_text(i) for i in left),
                _int(seq),
            )
        if kind == WAKE_BOARD:
            _, first_seq, updates = message
            return BoardWake(_int(first_seq), [_bytes(u) for u in updates])
    except (ValueError, TypeError, KeyError, IndexError, msgpack.UnpackException) as exc:
        raise ValueError(f"not a wake-up message: {exc}") from exc
    raise ValueError(f"unknown wake-up kind {kind!r}")


def _bytes(value: object) -> bytes:
    if not isinstance(value, bytes):
        raise ValueError(f"expected a string, got {type(value).__name__}")
    return value


def _text(value: object) -> str:
    return _bytes(value).decode()


def _int(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"expected an integer, got {type(value).__name__}")
    return value
