"""The connections of one room on one node that wait in its waiting room (docs/protocol.md,
"Waiting room").

A student who must wait (:func:`rooms.must_wait`) keeps their connection: it is answered
``waiting`` and held here, not as a member (it receives no events and is in no roster). The room's
log says who waits; this module only knows which of this node's connections belong to whom, so
that when the hub folds ``participant.admitted`` (appended by staff on any node) it can greet the
student on the connection they are waiting on, and when it folds ``participant.denied`` or
``session.ended`` close it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rooms import Participant

from .codec import pack
from .outbox import Outbox

if TYPE_CHECKING:
    from .hub import Member


@dataclass(eq=False, slots=True)
class Waiter:
    """One waiting connection: who, its outbox, and its token's class name (kept for the join
    that follows its admission).

    ``entered`` is the member it became once admitted and greeted; ``on_enter`` (set by the
    node) is called with it. ``gone`` is set when the connection closed: an admission under way
    then unregisters the member it made.
    """

    participant: Participant
    outbox: Outbox
    class_name: str | None = None
    entered: Member | None = None
    on_enter: Callable[[Member], None] | None = None
    gone: bool = False


@dataclass(slots=True)
class WaitingConnections:
    """This node's waiting connections of one room, by identity (a student may wait in several
    tabs; each is greeted when they are admitted)."""

    _by_identity: dict[str, list[Waiter]] = field(default_factory=dict)

    def add(self, waiter: Waiter) -> None:
        self._by_identity.setdefault(waiter.participant.identity, []).append(waiter)

    def discard(self, waiter: Waiter) -> bool:
        """Forget ``waiter``; True when it was the identity's last waiting connection here."""
        identity = waiter.participant.identity
        waiters = self._by_identity.get(identity)
        if waiters is None or waiter not in waiters:
            return False
        waiters.remove(waiter)
        if waiters:
            return False
        del self._by_identity[identity]
        return True

    def of(self, identity: str) -> list[Waiter]:
        """The identity's waiting connections here (a copy)."""
        return list(self._by_identity.get(identity, ()))

    def __iter__(self) -> Iterator[Waiter]:
        return iter([w for waiters in self._by_identity.values() for w in waiters])

    def __bool__(self) -> bool:
        return bool(self._by_identity)


def encode_waiting(room_id: str, class_name: str | None, position: int, heartbeat_ms: int) -> bytes:
    """``waiting{room, class_name, position, heartbeat_ms}``: the join must wait for staff to
    admit it; ``position`` is its place in the queue (1: first)."""
    return pack(
        {
            "t": "waiting",
            "room": room_id,
            "class_name": class_name,
            "position": position,
            "heartbeat_ms": heartbeat_ms,
        }
    )
