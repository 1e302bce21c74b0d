"""liveclass clients: the browser app (``clients/web/``) and the Python asyncio SDK."""

from .sdk import (
    ClassroomClient,
    ClientError,
    CommandFailed,
    ConnectionLost,
    Event,
    Refused,
    Session,
)

__all__ = [
    "ClassroomClient",
    "ClientError",
    "CommandFailed",
    "ConnectionLost",
    "Event",
    "Refused",
    "Session",
]
