"""liveclass clients: the browser app (``clients/web/``) and the Python asyncio SDK."""

from .breakouts import Breakouts
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
    "Breakouts",
    "ClassroomClient",
    "ClientError",
    "CommandFailed",
    "ConnectionLost",
    "Event",
    "Refused",
    "Session",
]
