"""Every WebSocket close code a liveclass server sends, on ``/ws`` and on the whiteboard.

One table, so that the edge (``signaling``), the whiteboard and the errors agree: each code is a
member of :class:`CloseCode` with what it means, where it is sent and whether a client should
reconnect after it. Errors carry theirs (``rooms.RoomError.close_code``,
``signaling.ClientError.close_code``, ``whiteboard.BoardError.close_code``); nothing else spells a
close code as a number. It lives in ``rooms`` because that is the one package every other may
import (docs/decisions/0011-one-close-code-table.md).

RFC 6455 section 7.4: 1000-2999 are the protocol's own codes (IANA "WebSocket Close Code Number
Registry"; the names here are websockets' ``CloseCode`` names for them); 4000-4999 are for
applications. Ours mirror HTTP statuses (4401 Unauthorized, 4403 Forbidden, 4409 Conflict, 4413
Content Too Large, 4423 Locked), which is also y-websocket's convention: a client stops after
4400-4499 and reconnects after anything else.

To add a close code: a member here, its row in docs/protocol.md ("Close codes" for ``/ws``, the
close-code table under "Whiteboard" for boards), and, when it is final, the clients' copies
(``FINAL_CLOSE_CODES`` in clients/sdk.py, clients/web/protocol.js and
clients/web/whiteboard/session.js). tests/unit/test_protocol_doc.py holds all of them to the doc.
"""

from __future__ import annotations

from enum import IntEnum

#: The endpoints a close code is sent on.
WS = "/ws"
BOARD = "/whiteboard"


class CloseCode(IntEnum):
    """A close code, with ``meaning``, ``reconnect`` (whether a client should reconnect after
    it: False means final, reconnecting cannot help) and ``endpoints`` (``/ws``,
    ``/whiteboard``)."""

    meaning: str
    reconnect: bool
    endpoints: frozenset[str]

    def __new__(cls, code: int, meaning: str, reconnect: bool, *endpoints: str) -> CloseCode:
        member = int.__new__(cls, code)
        member._value_ = code
        member.meaning = meaning
        member.reconnect = reconnect
        member.endpoints = frozenset(endpoints)
        return member

    NORMAL_CLOSURE = 1000, "normal close, after `leave`", False, WS
    PROTOCOL_ERROR = (
        1002,
        "the WebSocket layer received a frame that breaks RFC 6455; the client must be fixed",
        False,
        WS,
        BOARD,
    )
    INVALID_DATA = (
        1007,
        "a text frame that is not valid UTF-8, closed by the WebSocket layer",
        False,
        WS,
        BOARD,
    )
    MESSAGE_TOO_BIG = (
        1009,
        "a message over the WebSocket layer's limit, closed unread; sending it again would fail "
        "again, so the client must be fixed",
        False,
        WS,
        BOARD,
    )
    INTERNAL_ERROR = (
        1011,
        "the peer did not answer the server's WebSocket ping in time (heartbeat timeout), the "
        "server failed, or (whiteboard) the board store failed",
        True,
        WS,
        BOARD,
    )
    SERVICE_RESTART = (
        1012,
        "the server is restarting or draining, or (/ws) asks the client to move to a less "
        "loaded node (rebalancing)",
        True,
        WS,
        BOARD,
    )
    TRY_AGAIN_LATER = 1013, "a whiteboard connection fell behind (send queue full)", True, BOARD
    SLOW_CONSUMER = 4008, "the connection, or its node, fell behind", True, WS
    BAD_MESSAGE = 4400, "a malformed whiteboard message or board name", False, BOARD
    UNAUTHORIZED = 4401, "the token is missing, invalid or expired", False, WS, BOARD
    FORBIDDEN = 4403, "removed from the session, or a token for another room", False, WS, BOARD
    NOT_YOUR_BOARD = (
        4404,
        "the board is not open to this participant (a student opens 'main' and their breakout "
        "room's board; moved to another room, they open that room's)",
        False,
        BOARD,
    )
    SESSION_ENDED = 4409, "the session ended", False, WS, BOARD
    CONNECTION_REPLACED = (
        4410,
        "replaced by a newer connection of the same identity (past the per-identity cap)",
        False,
        WS,
        BOARD,
    )
    CONTENT_TOO_LARGE = 4413, "a whiteboard message over its limit", False, BOARD
    ROOM_LOCKED = 4423, "the room is locked and this identity never joined it", False, WS, BOARD


def close_codes(endpoint: str) -> frozenset[CloseCode]:
    """The close codes sent on ``endpoint`` (:data:`WS` or :data:`BOARD`)."""
    return frozenset(code for code in CloseCode if endpoint in code.endpoints)


def final_close_codes(endpoint: str) -> frozenset[int]:
    """The close codes on ``endpoint`` after which a client stays closed, as plain ints."""
    return frozenset(int(code) for code in close_codes(endpoint) if not code.reconnect)
