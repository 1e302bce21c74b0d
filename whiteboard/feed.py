"""The board feed interface: updates other nodes append to the boards this node has open.

With several nodes (scale-out) a board may be open on more than one. Each node appends its
clients' updates to the board's log in the store; the store announces every append (the
sequence number of its first update, and the updates), and the feed hands the announcement to
the node's :class:`whiteboard.board.Board`, which applies and relays what it has not seen.
Announcements may be lost or repeated: a board drops sequence numbers it has applied and reads
the store for any it is missing. Adapter: the Redis Cluster wiring in ``liveclass/wiring.py``;
the embedded single process needs none.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class BoardFeedHandler(Protocol):
    def updates(self, first_seq: int, updates: Sequence[bytes]) -> None:
        """Updates appended to the board (by any node), numbered from ``first_seq``."""
        ...

    def resubscribed(self) -> None:
        """The subscription was lost and restored: announcements may be missing."""
        ...


class BoardFeed(Protocol):
    async def subscribe(self, room_id: str, board: str, handler: BoardFeedHandler) -> None:
        """Hear about the board's appends from now on.

        Raises:
            whiteboard.BoardStoreUnavailable: the feed cannot subscribe now.
        """
        ...

    async def unsubscribe(self, room_id: str, board: str, handler: BoardFeedHandler) -> None:
        """Stop, unless the board was subscribed again since with another handler."""
        ...
