"""Wiring: choose the store and bus adapters and build a node.

The embedded default (no Redis address) is one process: SQLite under ``--data-dir`` (room logs
and whiteboards), the in-process bus and an in-process SFU Worker. With ``--redis-cluster`` the
node is stateless: room logs and presence live in the cluster, shared by every node, and media
goes to the SFU worker processes (``liveclass sfu``) registered there, each room placed on one of
them (:class:`signaling.sfu_placement.PlacedWorkers`). A cluster node runs no worker of its own:
workers are processes of their own, one per core, placed by load, so every node of a room reaches
the same Router. Nothing above the adapters changes.

Nodes and workers share the cluster's keyring: a node mints a token per RPC connection to a worker
(:func:`signaling.auth.mint_worker_token`) and the worker verifies it in the handshake
(:func:`signaling.auth.verify_worker_token`). ``sfu/`` knows neither: it is handed the two
callables built here.
"""

from __future__ import annotations

import asyncio
import logging
import time

from rooms import Participant
from sfu.metrics import WorkerCollector
from sfu.rpc import MintToken, Unauthorized, VerifyToken
from sfu.service import WorkerService
from sfu.worker import Worker
from signaling import (
    ClusterRouter,
    Keyring,
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
from signaling.audit import AuditLog, actor_at
from signaling.auth import mint_worker_token, verify_worker_token
from signaling.balance import BalanceCollector, LoadBoard, Rebalancer
from signaling.errors import TokenExpired, TokenInvalid
from signaling.metrics import RedisCollector
from signaling.node_heartbeat import NodeHeartbeat
from signaling.redis_cluster import ClusterUnavailable
from signaling.redis_log import ReplicaWait
from signaling.sfu_placement import PlacedWorkers, PlacementCollector
from signaling.sfu_registry import Registration, RegistryUnavailable, WorkerRegistry
from turn_config import TurnConfig
from whiteboard import RedisBoardStore, SqliteBoardStore, WhiteboardService

from .board_feed import RedisBoardFeed
from .config import ClusterSettings, ServeConfig, SfuConfig

log = logging.getLogger(__name__)


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
    router = ClusterRouter(parse_seeds(cluster.seeds), access=cluster.access)
    store = RedisEventStore(
        router, replicas=cluster.replicas, replica_wait_ms=cluster.replica_wait_ms
    )
    bus = RedisBus(router, node_id=cluster.node_id or None, presence_ttl_ms=cluster.presence_ttl_ms)
    board_store = RedisBoardStore(
        router,
        unavailable=(ClusterUnavailable,),
        replica_wait=ReplicaWait(cluster.replicas, cluster.replica_wait_ms),
        covered=lambda: router.serving,
    )
    feed = RedisBoardFeed(bus.subscriber)

    def boards(open_room: OpenRoom) -> WhiteboardService:
        return WhiteboardService(
            board_store, config.whiteboard, open_room, wire_frame, TokenBucket, feed
        )

    media = None
    if config.media is not None:
        media = PlacedWorkers(
            WorkerRegistry(router), config.media.placement, token=worker_tokens(config.keyring)
        )
    node = SignalingNode(config.node, config.http, config.keyring, store, bus, boards, media=media)
    node.balance = Rebalancer(LoadBoard(router), bus.node_id, node.joined_members, cluster.balance)
    node.metrics.registry.register(BalanceCollector(node.balance))
    subscriber = bus.subscriber
    node.metrics.registry.register(RedisCollector(router, lambda: subscriber.reconnects))
    node.heartbeat = NodeHeartbeat(router, bus.node_id, node.node_facts)
    return _with_media(node, config)


def build_media(config: ServeConfig) -> Worker | None:
    """The SFU worker inside this process (``--no-media``: none)."""
    if config.media is None:
        return None
    return Worker(
        listen_ips=config.media.listen_ips,
        announced_ip=config.media.announced_ip,
        ice_max_addresses=config.media.ice_max_addresses,
    )


def _with_media(node: SignalingNode, config: ServeConfig) -> SignalingNode:
    turn = config.turn
    if turn.enabled and node.media is not None:
        issued = node.metrics.turn_credentials

        def ice_servers(participant: Participant) -> list[dict[str, object]]:
            servers = turn_servers_for(turn, participant)
            issued.inc(len(servers))
            return servers

        node.ice_servers = ice_servers
    if isinstance(node.media, PlacedWorkers):
        node.metrics.registry.register(PlacementCollector(node.media))
    elif node.media is not None:
        node.metrics.registry.register(WorkerCollector(node.media))
    return node


def turn_servers_for(turn: TurnConfig, participant: Participant) -> list[dict[str, object]]:
    """The ``ice_servers`` of a ``welcome``: TURN credentials only for a participant whose token
    lets them send or receive media (a TURN relay is of no use to anyone else, and a credential
    handed out is one that can leak). With ``--no-media`` nobody gets any (see ``_with_media``)."""
    if not (participant.can_publish or participant.can_subscribe):
        return []
    return turn.ice_servers(participant.identity, None, time.time())


def worker_tokens(keyring: Keyring) -> MintToken:
    """A node's tokens for its RPC connections: one per connection, signed with the signing kid."""
    return lambda worker_id: mint_worker_token(keyring, worker_id)


def worker_token_check(keyring: Keyring) -> VerifyToken:
    """A worker's check of a node's token: any kid of the keyring verifies (rotation)."""

    def verify(token: str, worker_id: str) -> None:
        try:
            verify_worker_token(keyring, token, worker_id)
        except (TokenInvalid, TokenExpired) as exc:
            raise Unauthorized(f"{type(exc).__name__}: {exc}") from exc

    return verify


class SfuWorkerProcess:
    """``liveclass sfu``: a Worker served over RPC (:class:`sfu.service.WorkerService`) and
    registered for placement on the cluster (:class:`signaling.sfu_registry.Registration`)."""

    def __init__(self, config: SfuConfig, audit: AuditLog | None = None) -> None:
        self.config = config
        self.audit = audit or AuditLog.off()
        self.router = ClusterRouter(parse_seeds(config.seeds), access=config.redis_access)
        self.worker = Worker(
            listen_ips=config.listen_ips,
            announced_ip=config.announced_ip,
            ice_max_addresses=config.ice_max_addresses,
        )
        self.service = WorkerService(
            self.worker,
            config.worker_id,
            worker_token_check(config.keyring),
            ready=lambda: self.registration.ready,
            registered=lambda: self.registration.registered,
            draining=lambda: self.registration.draining,
            refused=lambda address: self.audit.record(
                "auth",
                "sfu_rpc",
                actor_at(address),
                code="token_invalid",
                detail={"status": 401},
            ),
        )
        self.registration = Registration(
            WorkerRegistry(self.router),
            config.worker_id,
            config.rpc_url,
            lambda: (self.service.load(), self.service.rooms()),
            ttl_ms=config.heartbeat_ttl_ms,
        )
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Learn the cluster, listen, then register (placement may pick it from then on).

        Raises:
            ClusterUnavailable, RegistryUnavailable: the cluster cannot be reached.
            OSError: the RPC address cannot be bound.
        """
        await self.router.start()
        tls = self.config.tls
        await self.service.start(
            self.config.host, self.config.port, tls.context if tls is not None else None
        )
        await self.registration.start()

    def request_drain(self, draining: bool = True) -> None:
        """Take this worker out of placement (SIGUSR1), or put it back (SIGUSR2), in the
        background: its rooms stay until they end (:meth:`WorkerRegistry.drain`)."""

        async def drain() -> None:
            try:
                await self.registration.drain(draining)
            except RegistryUnavailable as exc:
                log.error("sfu: could not %s: %s", "drain" if draining else "undrain", exc)

        task = asyncio.get_running_loop().create_task(drain())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Leave placement first, then close the nodes' connections (they reset their sessions,
        whose rooms are placed on other workers)."""
        await self.registration.close()
        await self.service.close()
        await self.router.close()


def build_sfu_worker(config: SfuConfig, audit: AuditLog | None = None) -> SfuWorkerProcess:
    return SfuWorkerProcess(config, audit)
