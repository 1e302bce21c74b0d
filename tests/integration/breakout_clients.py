"""Classroom clients for breakout-room tests: each keeps every frame it received, and follows
``view`` frames (a change of place replaces its RoomView, docs/protocol.md "Changes of place")."""

from __future__ import annotations

from typing import Any

from clients import ClassroomClient, CommandFailed, Event

#: The event types scoped to a place: their ``data.room`` names the breakout (nil: main room).
SCOPED_TYPES = frozenset(
    {
        "chat.message",
        "question.asked",
        "question.upvoted",
        "question.unvoted",
        "question.answered",
        "question.dismissed",
        "question.pinned",
        "hand.raised",
        "hand.lowered",
        "hand.called",
    }
)


class RecordingClient(ClassroomClient):
    """A :class:`clients.ClassroomClient` that records every frame, in order."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.frames: list[dict[str, Any]] = []

    async def _dispatch(self, msg: dict[str, Any]) -> None:
        self.frames.append(msg)
        if msg.get("t") == "view":
            self.session.room = msg["room"]
            self.session.last_id = msg["last_id"]
        await super()._dispatch(msg)

    @property
    def identity(self) -> str:
        return str(self.session.you["identity"])

    def views(self) -> list[dict[str, Any]]:
        return [f for f in self.frames if f.get("t") == "view"]

    def events_of(self, type_: str) -> list[Event]:
        return [e for e in self.session.events if e.type == type_]


async def refused(client: ClassroomClient, type_: str, **fields: Any) -> tuple[str, str | None]:
    """The error code and field a command is refused with (fails when it is acknowledged)."""
    try:
        await client.request(type_, **fields)
    except CommandFailed as exc:
        return exc.code, exc.frame.get("field")
    raise AssertionError(f"{type_} {fields} was accepted")


def place_after(frames: list[dict[str, Any]], identity: str) -> list[tuple[int, str | None]]:
    """The places of ``identity`` the frames tell, as (from event id, place) steps."""
    steps: list[tuple[int, str | None]] = [(0, None)]
    for f in frames:
        if f.get("t") != "event":
            continue
        data = f["data"]
        if f["type"] == "breakout.opened":
            steps.append((f["id"], (data.get("members") or {}).get(identity)))
        elif f["type"] == "breakout.assigned" and identity in data["members"]:
            steps.append((f["id"], data["members"][identity]))
        elif f["type"] == "breakout.moved" and data["identity"] == identity:
            steps.append((f["id"], data["room"]))
        elif f["type"] == "breakout.closed":
            steps.append((f["id"], None))
    return steps


def leaks(client: RecordingClient) -> list[dict[str, Any]]:
    """Every scoped event ``client`` (a student) received from a place other than its own at
    that event (a broadcast is for everyone; a private thread follows its student)."""
    steps = place_after(client.frames, client.identity)
    wrong = []
    for f in client.frames:
        if f.get("t") != "event" or f["type"] not in SCOPED_TYPES:
            continue
        data = f["data"]
        if data.get("broadcast") or data.get("thread") is not None:
            continue
        place = [p for start, p in steps if start < f["id"]][-1]
        if data.get("room") != place:
            wrong.append(f)
    return wrong
