"""Saved breakout groups: a staff member's named sets of rooms and assignments, reused across
sessions (docs/protocol.md, "Saved breakout groups").

A group set is not part of any room's log: it outlives the room. The store keeps each saver's
library under their identity (:meth:`signaling.store.EventStore.save_groups`), at most
:data:`MAX_SETS` sets, each at most :data:`MAX_ROOMS` rooms and :data:`MAX_MEMBERS` members, so
no input makes the store hold an unbounded amount. The edge answers ``breakout.groups.save``,
``list`` and ``delete`` itself, and expands ``breakout.open{groups}`` into rooms and members
before the room decides it (:func:`expand`).
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgpack

from rooms import LimitReached, NotAllowed, Participant, RoomError

from .codec import GroupsRequest, encode_ack, encode_error, encode_groups
from .errors import BadFieldType, ClientError
from .store import EventStore

log = logging.getLogger(__name__)

#: Saved sets per owner at most.
MAX_SETS = 50
#: Rooms of one set at most (a breakout opening has at most 50).
MAX_ROOMS = 50
#: Assigned identities of one set at most.
MAX_MEMBERS = 2000
#: A set's name and a room's name: 1-64 characters.
NAME_MAX = 64
#: An identity in a set: 1-256 characters (a token's ``sub``).
IDENTITY_MAX = 256


@dataclass(frozen=True, slots=True)
class GroupSet:
    """One saved set: ``rooms`` in order, and ``members`` (identity -> one of ``rooms``)."""

    name: str
    rooms: tuple[str, ...]
    members: Mapping[str, str]

    def to_wire(self) -> dict[str, Any]:
        """``{name: str, rooms: [str], members: {identity: room}}``."""
        return {"name": self.name, "rooms": list(self.rooms), "members": dict(self.members)}

    def encode(self) -> bytes:
        """The set as msgpack bytes, as the store keeps it."""
        return msgpack.packb(self.to_wire())

    @classmethod
    def decode(cls, data: bytes) -> GroupSet:
        """The inverse of :meth:`encode` (the store holds only what :func:`check_group_set`
        admitted).

        Raises:
            ValueError: ``data`` is not a stored set.
        """
        try:
            wire = msgpack.unpackb(data)
            return check_group_set(wire["name"], wire["rooms"], wire["members"])
        except (BadFieldType, KeyError, TypeError, msgpack.UnpackException) as exc:
            raise ValueError(f"not a saved group set: {exc}") from exc


def is_display_name(name: object) -> bool:
    """A set or room name: 1-64 characters, not blank, no control characters."""
    return (
        isinstance(name, str)
        and 1 <= len(name) <= NAME_MAX
        and bool(name.strip())
        and not any(unicodedata.category(c) == "Cc" for c in name)
    )


def check_name(name: object, field: str = "name") -> str:
    """A set name (:func:`is_display_name`).

    Raises:
        BadFieldType: with ``field``.
    """
    if not is_display_name(name):
        raise BadFieldType(
            f"{field} is 1-{NAME_MAX} characters, not blank, no control characters", field=field
        )
    assert isinstance(name, str)
    return name


def check_group_set(name: object, rooms: object, members: object) -> GroupSet:
    """A set to save, checked against the bounds.

    Raises:
        BadFieldType: ``name`` (see :func:`check_name`), ``rooms`` (1-50 distinct room names),
            ``members`` (a map of at most 2,000 identities, each to one of ``rooms``).
    """
    name = check_name(name)
    if not isinstance(rooms, list | tuple) or not 1 <= len(rooms) <= MAX_ROOMS:
        raise BadFieldType(f"rooms is an array of 1-{MAX_ROOMS} room names", field="rooms")
    if not all(is_display_name(r) for r in rooms) or len(set(rooms)) != len(rooms):
        raise BadFieldType(
            f"rooms are distinct names of 1-{NAME_MAX} characters, not blank, no control "
            "characters",
            field="rooms",
        )
    if not isinstance(members, Mapping) or len(members) > MAX_MEMBERS:
        raise BadFieldType(
            f"members is a map of at most {MAX_MEMBERS} identities to rooms", field="members"
        )
    known = set(rooms)
    for identity, room in members.items():
        if not isinstance(identity, str) or not 1 <= len(identity) <= IDENTITY_MAX:
            raise BadFieldType(
                f"members' keys are identities of 1-{IDENTITY_MAX} characters", field="members"
            )
        if room not in known:
            raise BadFieldType(
                f"members assigns {identity!r} to a room not in rooms", field="members"
            )
    return GroupSet(name, tuple(rooms), dict(members))


def expand(
    group: GroupSet, present: Mapping[str, object]
) -> tuple[tuple[str, ...], dict[str, str]]:
    """The rooms and initial assignment that opening ``group`` in a room gives: identities
    that are not among ``present`` (the room's participants, not removed) are dropped."""
    return group.rooms, {i: r for i, r in group.members.items() if i in present}


async def answer(store: EventStore, participant: Participant, request: GroupsRequest) -> bytes:
    """The answer to a ``breakout.groups.*`` request of ``participant``: its ``ack`` (with
    ``groups`` for ``list``), or an error frame.

    Raises:
        StoreUnavailable: the store failed (the caller answers ``unavailable``).
    """
    try:
        if not participant.is_staff:
            raise NotAllowed("only staff keep breakout groups")
        owner = participant.identity
        if request.type == "breakout.groups.save":
            group = check_group_set(request.name, request.rooms, request.members)
            if not await store.save_groups(owner, group.name, group.encode(), max_sets=MAX_SETS):
                raise LimitReached(f"you keep {MAX_SETS} group sets already", "name")
        elif request.type == "breakout.groups.delete":
            name = check_name(request.name)
            if not await store.delete_groups(owner, name):
                raise BadFieldType(f"you have no group set named {name!r}", field="name")
        else:
            return encode_groups(request.ref, [g.to_wire() for g in await library(store, owner)])
    except (ClientError, RoomError) as exc:
        return encode_error(exc, request.ref)
    return encode_ack(request.ref, [])


async def library(store: EventStore, owner: str) -> list[GroupSet]:
    """``owner``'s saved sets, by name (a set the store holds damaged is left out).

    Raises:
        StoreUnavailable: the store failed.
    """
    sets = []
    for name, data in sorted((await store.groups(owner)).items()):
        try:
            sets.append(GroupSet.decode(data))
        except ValueError as exc:
            log.warning("groups of %r: set %r cannot be read: %s", owner, name, exc)
    return sets


async def find(store: EventStore, owner: str, name: str) -> GroupSet:
    """``owner``'s set ``name``, for ``breakout.open{groups}``.

    Raises:
        BadFieldType: no such set (field ``groups``).
        StoreUnavailable: the store failed.
    """
    data = (await store.groups(owner)).get(name)
    if data is not None:
        try:
            return GroupSet.decode(data)
        except ValueError as exc:
            log.warning("groups of %r: set %r cannot be read: %s", owner, name, exc)
    raise BadFieldType(f"you have no group set named {name!r}", field="groups")
