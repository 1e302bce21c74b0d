"""Wiring: choose the store and bus adapters and build a node.

The embedded default (no Redis address) is one process: SQLite under ``--data-dir`` (room logs
and whiteboards) and the in-process bus. The Redis Cluster adapters plug in here with scale-out;
nothing above changes.
"""

from __future__ import annotations

from signaling import LocalBus, OpenRoom, SignalingNode, SqliteEventStore, TokenBucket, wire_frame
from whiteboard import SqliteBoardStore, WhiteboardService

from .config import ServeConfig


def build_embedded_node(config: ServeConfig) -> SignalingNode:
    store = SqliteEventStore(config.data_dir / "events.sqlite3")
    board_store = SqliteBoardStore(config.data_dir / "whiteboards.sqlite3")

    def boards(open_room: OpenRoom) -> WhiteboardService:
        return WhiteboardService(board_store, config.whiteboard, open_room, wire_frame, TokenBucket)

    return SignalingNode(config.node, config.http, config.keyring, store, LocalBus(), boards)
