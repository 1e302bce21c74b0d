"""Wiring: choose the store and bus adapters and build a node.

The embedded default (no Redis address) is one process: SQLite under ``--data-dir`` (room logs
and whiteboards) and the in-process bus. With ``--redis-cluster`` the node is stateless: room logs
and presence live in the cluster, shared by every node. Nothing above the adapters changes.
"""

from __future__ import annotations

import time

from sfu.metrics import WorkerCollector
from sfu.worker import Worker
from signaling import (
    ClusterRouter,
    LocalBus,
    OpenRoom,
    RedisBus,
    RedisEventStore,
    SignalingNode,
    SqliteEventStore,
    TokenBucket,
    parse_seeds,
    wire_frame,
)
from signaling.redis_cluster import ClusterUnavailable
from whiteboard import RedisBoardStore, SqliteBoardStore, WhiteboardService

from .board_feed import RedisBoardFeed
from .config import ClusterSettings, ServeConfig


def build_node(config: ServeConfig) -> SignalingNode:
    if config.cluster is not None:
        return build_cluster_node(config, config.cluster)
    return build_embedded_node(config)


def build_embedded_node(config: ServeConfig) -> SignalingNode:
    store = SqliteEventStore(config.data_dir / "events.sqlite3")
    board_store = SqliteBoardStore(config.data_dir / "whiteboards.sqlite3")

    def boards(open_room: OpenRoom) -> WhiteboardService:
        return WhiteboardService(board_store, config.whiteboard, open_room, wire_frame, TokenBucket)

    media = build_media(config)
    node = SignalingNode(
        config.node, config.http, config.keyring, store, LocalBus(), boards, media=media
    )
    return _with_media(node, config)


def build_cluster_node(config: ServeConfig, cluster: ClusterSettings) -> SignalingNode:
    """A stateless node on a Redis Cluster: one router (slot map) and one sharded subscriber
    shared by the room log, the bus, the board store and the board feed."""
    router = ClusterRouter(parse_seeds(cluster.seeds))
    store = RedisEventStore(
        router, replicas=cluster.replicas, replica_wait_ms=cluster.replica_wait_ms
    )
    bus = RedisBus(router, node_id=cluster.node_id or None, presence_ttl_ms=cluster.presence_ttl_ms)
    board_store = RedisBoardStore(
        router,
        unavailable=(ClusterUnavailable,),
        replicas=cluster.replicas,
        replica_wait_ms=cluster.replica_wait_ms,
        covered=lambda: router.covered,
    )
    feed = RedisBoardFeed(bus.subscriber)

    def boards(open_room: OpenRoom) -> WhiteboardService:
        return WhiteboardService(
            board_store, config.whiteboard, open_room, wire_frame, TokenBucket, feed
        )

    node = SignalingNode(
        config.node, config.http, config.keyring, store, bus, boards, media=build_media(config)
    )
    return _with_media(node, config)


def build_media(config: ServeConfig) -> Worker | None:
    """The SFU worker inside this process (``--no-media``: none)."""
    if config.media is None:
        return None
    return Worker(listen_ips=config.media.listen_ips)


def _with_media(node: SignalingNode, config: ServeConfig) -> SignalingNode:
    turn = config.turn
    if turn.enabled:
        node.ice_servers = lambda p: turn.ice_servers(p.identity, None, time.time())
    if node.media is not None:
        node.metrics.registry.register(WorkerCollector(node.media))
    return node
