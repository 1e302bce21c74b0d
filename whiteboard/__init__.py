"""The whiteboard: a y-websocket server on pycrdt, durable before it relays.

Any Yjs client (the y-websocket provider, tldraw or Excalidraw bindings) syncs a board at
``/whiteboard/<room>/<board>``. The protocol is in :mod:`whiteboard.protocol`, a board in
:mod:`whiteboard.board`, the set of boards and the connection lifecycle in
:mod:`whiteboard.service`, and the stores behind the :class:`BoardStore` interface. The board's
data model for clients is docs/whiteboard.md.
"""

from .board import Board, Peer, RateLimit, RoomFeed, Sender
from .errors import AccessDenied, BadMessage, BadUpdate, BoardError, MessageTooLarge, StoreFailed
from .feed import BoardFeed, BoardFeedHandler
from .redis_store import RedisBoardStore
from .service import WhiteboardService
from .settings import WhiteboardSettings
from .sqlite_store import SqliteBoardStore
from .store import BoardStore, BoardStoreUnavailable, KeyRouter, ReplicaWait, StoredBoard

__all__ = [
    "AccessDenied",
    "BadMessage",
    "BadUpdate",
    "Board",
    "BoardError",
    "BoardFeed",
    "BoardFeedHandler",
    "BoardStore",
    "BoardStoreUnavailable",
    "KeyRouter",
    "MessageTooLarge",
    "Peer",
    "RateLimit",
    "RedisBoardStore",
    "ReplicaWait",
    "RoomFeed",
    "Sender",
    "SqliteBoardStore",
    "StoreFailed",
    "StoredBoard",
    "WhiteboardService",
    "WhiteboardSettings",
]
