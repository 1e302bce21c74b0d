"""The room and the connection a log line is about, carried by context variables.

A ``/ws`` or whiteboard connection's handler binds its connection id, and its room once known;
every line logged while it runs (and in the tasks it starts, which copy the context) carries them,
whichever logger wrote it. ``liveclass.logs`` puts them in each record. A room's own work (its
subscription, its batch writer) is started :func:`in_room` or :func:`unbound` so it does not carry
the id of the connection that happened to wake it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

#: The room (a room id) the current work is for, or None.
ROOM: ContextVar[str | None] = ContextVar("liveclass_room", default=None)
#: The connection (a short id, unique per node start) the current work is for, or None.
CONNECTION: ContextVar[str | None] = ContextVar("liveclass_connection", default=None)


@contextmanager
def unbound() -> Iterator[None]:
    """Run the block with no connection bound (the room stays): tasks and timers it starts are
    the room's, not the connection's."""
    token = CONNECTION.set(None)
    try:
        yield
    finally:
        CONNECTION.reset(token)


@contextmanager
def in_room(room_id: str) -> Iterator[None]:
    """Run the block for room ``room_id`` and no connection (a room opening its subscription)."""
    room, connection = ROOM.set(room_id), CONNECTION.set(None)
    try:
        yield
    finally:
        CONNECTION.reset(connection)
        ROOM.reset(room)
