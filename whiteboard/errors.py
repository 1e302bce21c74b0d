"""Why a whiteboard connection is closed: each error carries the WebSocket close code it ends with.

y-websocket clients treat 4400-4499 as permanent and stop reconnecting; other codes (1011, 1013)
make them reconnect and sync again. See docs/whiteboard.md, "Close codes".
"""

from __future__ import annotations

from typing import ClassVar

from rooms import CloseCode


class BoardError(Exception):
    """A whiteboard connection must close with ``close_code``; ``str()`` is the close reason."""

    default_close_code: ClassVar[CloseCode] = CloseCode.BAD_MESSAGE

    def __init__(self, reason: str, close_code: CloseCode | None = None) -> None:
        super().__init__(reason)
        self.close_code = close_code if close_code is not None else self.default_close_code


class BadMessage(BoardError):
    """Not a well-formed y-websocket message (truncated, bad varUint, unknown type, bad JSON),
    a text frame, or a state vector pycrdt cannot read."""


class BadUpdate(BoardError):
    """An update pycrdt cannot apply; the board is unchanged."""


class MessageTooLarge(BoardError):
    """A message over ``max_message_bytes``."""

    default_close_code = CloseCode.CONTENT_TOO_LARGE


class AccessDenied(BoardError):
    """The token does not admit this connection to this board: invalid or expired (4401),
    another room or removed (4403), the session ended (4409), the room locked (4423)."""

    default_close_code = CloseCode.FORBIDDEN


class StoreFailed(BoardError):
    """The board store failed; the update was not applied. Retryable: the client reconnects and
    sends it again in its sync step 2."""

    default_close_code = CloseCode.INTERNAL_ERROR
