"""What the node needs from a whiteboard service (``whiteboard.WhiteboardService``): the node
verifies the token and owns the socket; the endpoint serves the connection. The composition root
(liveclass/wiring.py) builds the service and hands it to the node, so signaling never imports it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Protocol

from rooms import Participant

from .hub import RoomHub
from .metrics import BoardCounts
from .outbox import Outbox

#: The node's room hubs, as a whiteboard service follows them (locks, clears, removals).
OpenRoom = Callable[[str], Awaitable[RoomHub]]


class BoardEndpoint(Protocol):
    @property
    def max_message_bytes(self) -> int:
        """The largest message a client may send (the endpoint refuses larger ones itself)."""
        ...

    async def serve(
        self,
        room_id: str,
        board: str,
        participant: Participant,
        sender: Outbox,
        messages: AsyncIterator[str | bytes],
    ) -> tuple[int, str] | None:
        """Serve one verified connection until it ends.

        Returns the close code and reason to send, or None when the client went away.
        Raises ConnectionClosed from ``messages`` as the WebSocket layer does.
        """
        ...

    async def snapshot(self, room_id: str, board: str, snapshot_id: int) -> bytes | None:
        """A saved snapshot, None when there is none. Raises OSError when the store fails."""
        ...

    def ready(self) -> bool: ...

    @property
    def boards(self) -> int:
        """Boards loaded (``liveclass_boards``)."""
        ...

    @property
    def board_bytes(self) -> int:
        """Stored update bytes of the loaded boards (``liveclass_board_bytes``)."""
        ...

    @property
    def counts(self) -> BoardCounts:
        """Updates committed and compactions done (``liveclass_board_*_total``)."""
        ...

    async def close(self) -> None: ...
