"""Helpers for integration tests that run a class over real WebSocket connections."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence

from clients import ClassroomClient, Event
from tests.server import LiveclassServer

#: Event types every participant receives (docs/protocol.md, "who receives the event").
PUBLIC_TYPES = frozenset(
    {
        "hand.raised",
        "hand.lowered",
        "hand.called",
        "hands.cleared",
        "question.asked",
        "question.upvoted",
        "question.unvoted",
        "question.answered",
        "question.dismissed",
        "question.pinned",
        "poll.opened",
        "poll.closed",
        "chat.muted",
        "participant.removed",
        "room.locked",
        "session.ended",
        "media.mode_changed",
        "media.muted",
        "media.permitted",
        "media.spotlighted",
        "stage.changed",
        "breakout.opened",
        "breakout.moved",
        "breakout.closed",
    }
)


def public(events: Iterable[Event]) -> list[tuple[int, str, dict[str, object]]]:
    """The events everyone receives, as comparable tuples (chat only when room-wide)."""
    return [
        (e.id, e.type, e.data)
        for e in events
        if e.type in PUBLIC_TYPES or (e.type == "chat.message" and e.data["thread"] is None)
    ]


def client(
    server: LiveclassServer, identity: str, role: str = "student", **kw: object
) -> ClassroomClient:
    return ClassroomClient(
        server.ws_url,
        server.token(identity, role),
        "class",
        backoff=(0.05, 0.5),
        **kw,  # type: ignore[arg-type]
    )


async def connect_all(clients: Sequence[ClassroomClient]) -> None:
    await asyncio.gather(*(c.connect() for c in clients))


async def close_all(clients: Sequence[ClassroomClient]) -> None:
    await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)


async def wait_all(clients: Sequence[ClassroomClient], last_id: int, timeout: float = 15.0) -> None:
    """Wait until every client has received events up to ``last_id`` (or passed it)."""
    await asyncio.gather(
        *(c.wait_until(lambda c=c: c.session.last_id >= last_id, timeout) for c in clients)
    )
