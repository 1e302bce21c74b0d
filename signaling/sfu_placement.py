"""The cluster's SFU workers seen as one Worker: rooms placed by load, dead workers replaced.

:class:`PlacedWorkers` has the async interface of :class:`sfu.worker.Worker` that
:class:`signaling.media.MediaSession` calls, so a node on a Redis Cluster uses worker processes
(``liveclass sfu``) exactly as an embedded node uses its in-process Worker. Behind it:

- a connection's first ``publish``/``subscribe`` places its room (the part of the Router id
  before ``/``, so a room and its breakouts share a worker, which moves peers between its Routers
  in-process) through :meth:`signaling.sfu_registry.WorkerRegistry.place`; every later call of
  that connection goes to the same worker over one RPC connection per worker
  (:class:`sfu.remote.RemoteWorker`), each opened with a token from ``token`` (the wiring mints
  them with the cluster's keyring, :func:`signaling.auth.mint_worker_token`);
- a worker is **lost** when its RPC connection closes and cannot be opened again within
  ``reconnect_s``, when a call goes unanswered for ``call_timeout_s``, or when its registration
  has lapsed at two checks in a row while other workers' are fresh. Its peers are gone with it
  (a worker closes a node's peers when the node's connection closes), so every session whose
  media was there is told ``media.reset`` (its ``reset`` callback); the client publishes and
  subscribes again and its room is placed anew, on another worker. The finding names the
  worker's process (its registration epoch) and goes to the registry with the placement, so
  every node stops placing rooms on that process (:meth:`WorkerRegistry.place`); the same id
  registered again by a restarted process is placed again, by every node;
- every ``monitor_interval_s`` the node compares where its sessions' media is with the room's
  recorded worker: a session on another worker than the room's (another node re-placed it) is
  reset too, so a room never stays split over two workers.

No live worker: ``media_unavailable``. Worker refusals come back as
:class:`sfu.transport.MediaError` with the protocol's codes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from sfu.remote import RemoteWorker, SendLayers, SendOffer, WorkerLost
from sfu.rpc import MintToken
from sfu.transport import MediaError

from . import tracing
from .errors import MediaUnavailable
from .sfu_registry import RegistryUnavailable, WorkerRegistry

log = logging.getLogger(__name__)

#: ``media.reset`` reasons (docs/protocol.md, "Media").
RESET_WORKER_LOST = "worker_lost"
RESET_ROOM_MOVED = "room_moved"
#: How long a worker this node found dead stays excluded from its placements (s), unless it
#: leaves the registry sooner.
DEAD_HOLD_S = 60.0


@dataclass(frozen=True, slots=True)
class PlacementSettings:
    """Timings of a node's use of remote workers (flags in liveclass/config.py)."""

    call_timeout_s: float = 10.0
    connect_timeout_s: float = 2.0
    reconnect_s: float = 0.5
    monitor_interval_s: float = 1.0
    #: Verifies ``wss://`` workers' certificates (``--sfu-tls-ca-file``); None: the system's CAs.
    rpc_tls: ssl.SSLContext | None = None


@dataclass(slots=True)
class _Peer:
    worker_id: str
    room_id: str


class PlacedWorkers:
    """Routes a node's media calls to the worker holding each room (see the module docstring).

    Args:
        registry: the worker registry on the cluster.
        settings: timeouts.
        token: mints the bearer token of one RPC connection to a worker id.
    """

    def __init__(
        self,
        registry: WorkerRegistry,
        settings: PlacementSettings | None = None,
        *,
        token: MintToken,
    ) -> None:
        self.registry = registry
        self.settings = settings or PlacementSettings()
        self.token = token
        self._remotes: dict[str, RemoteWorker] = {}
        self._connecting: dict[str, asyncio.Future[RemoteWorker]] = {}
        self._peers: dict[str, _Peer] = {}
        self._resets: dict[str, Callable[[str], None]] = {}
        #: Worker id -> (excluded until (monotonic s), the epoch of the process found dead).
        self._dead: dict[str, tuple[float, str]] = {}
        #: Worker id -> the epoch of the process this node last placed on or connected to.
        self._epochs: dict[str, str] = {}
        self._absent: set[str] = set()  # connected workers the registry did not list last time
        self._monitor: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        #: Counters for /metrics.
        self.workers_lost = 0
        self.resets = 0
        self.placements = 0

    # -- sessions ------------------------------------------------------------------------------

    def add_reset_listener(self, peer_id: str, reset: Callable[[str], None]) -> None:
        """Call ``reset(reason)`` when ``peer_id``'s media is lost with its worker."""
        self._resets[peer_id] = reset

    def remove_reset_listener(self, peer_id: str) -> None:
        self._resets.pop(peer_id, None)

    @property
    def connected_workers(self) -> int:
        """Workers this node has an open RPC connection to."""
        return sum(1 for remote in self._remotes.values() if not remote.lost)

    # -- the Worker interface ------------------------------------------------------------------

    async def publish(
        self,
        peer_id: str,
        router_id: str,
        identity: str,
        offer: str,
        sources: Mapping[str, str],
        blocked: Collection[str] = (),
    ) -> str:
        """:meth:`sfu.worker.Worker.publish` on the room's worker.

        Raises:
            MediaError: refused by the worker.
            MediaUnavailable: no live worker, or the worker was lost meanwhile.
        """
        remote = await self._remote_for(peer_id, router_id)
        answer = await self._call(
            remote,
            "publish",
            peer_id=peer_id,
            router_id=router_id,
            identity=identity,
            offer=offer,
            sources=dict(sources),
            blocked=sorted(blocked),
        )
        return str(answer)

    async def subscribe(
        self,
        peer_id: str,
        router_id: str,
        identity: str,
        send_offer: SendOffer,
        send_layers: SendLayers | None = None,
    ) -> None:
        """:meth:`sfu.worker.Worker.subscribe` on the room's worker; its offers and video layer
        changes are pushed back over the RPC connection to ``send_offer`` and ``send_layers``."""
        remote = await self._remote_for(peer_id, router_id)
        remote.offers[peer_id] = send_offer
        if send_layers is not None:
            remote.layers[peer_id] = send_layers
        await self._call(
            remote, "subscribe", peer_id=peer_id, router_id=router_id, identity=identity
        )

    async def answer(self, peer_id: str, version: int, sdp: str) -> None:
        remote = self._remote_of(peer_id)
        if remote is None:
            raise MediaError("no_transport", "no subscribe transport: send media.subscribe first")
        await self._call(remote, "answer", peer_id=peer_id, version=version, sdp=sdp)

    async def candidate(
        self, peer_id: str, transport: str, candidate: str, sdp_mid: str | None
    ) -> None:
        remote = self._remote_of(peer_id)
        if remote is None:
            raise MediaError("no_transport", f"no {transport!r} transport for this connection")
        await self._call(
            remote,
            "candidate",
            peer_id=peer_id,
            transport=transport,
            candidate=candidate,
            sdp_mid=sdp_mid,
        )

    async def unpublish(self, peer_id: str, source: str) -> None:
        remote = self._remote_of(peer_id)
        if remote is None:
            raise MediaError("no_transport", "no publish transport: send media.publish first")
        await self._call(remote, "unpublish", peer_id=peer_id, source=source)

    async def restrict(self, peer_id: str, blocked: Collection[str]) -> None:
        remote = self._remote_of(peer_id)
        if remote is not None:
            await self._call(remote, "restrict", peer_id=peer_id, blocked=sorted(blocked))

    async def view(self, peer_id: str, video: str | list[str]) -> None:
        remote = self._remote_of(peer_id)
        if remote is not None:
            await self._call(remote, "view", peer_id=peer_id, video=video)

    async def move(self, peer_id: str, router_id: str) -> None:
        remote = self._remote_of(peer_id)
        if remote is not None:
            await self._call(remote, "move", peer_id=peer_id, router_id=router_id)

    async def close_peer(self, peer_id: str) -> None:
        """Close the peer on its worker; a lost worker has closed it already."""
        remote = self._remote_of(peer_id)
        self._forget(peer_id)
        if remote is not None:
            with contextlib.suppress(WorkerLost, MediaUnavailable, MediaError):
                await self._call(remote, "close_peer", peer_id=peer_id)

    # -- placement -----------------------------------------------------------------------------

    def _remote_of(self, peer_id: str) -> RemoteWorker | None:
        peer = self._peers.get(peer_id)
        if peer is None:
            return None
        remote = self._remotes.get(peer.worker_id)
        return remote if remote is not None and not remote.lost else None

    def _forget(self, peer_id: str) -> None:
        peer = self._peers.pop(peer_id, None)
        if peer is not None:
            remote = self._remotes.get(peer.worker_id)
            if remote is not None:
                remote.offers.pop(peer_id, None)
                remote.layers.pop(peer_id, None)

    async def _remote_for(self, peer_id: str, router_id: str) -> RemoteWorker:
        """The peer's worker; for a new peer its room's (placed now if need be)."""
        peer = self._peers.get(peer_id)
        if peer is not None:
            remote = self._remotes.get(peer.worker_id)
            if remote is None or remote.lost:
                raise MediaUnavailable("the media server was lost; your media is being reset")
            return remote
        self._start_monitor()
        room_id = router_id.split("/", 1)[0]
        for _ in range(3):  # each try excludes one more worker found dead
            try:
                placement = await self.registry.place(room_id, self._excluded())
            except RegistryUnavailable as exc:
                raise MediaUnavailable(f"media cannot be placed now; retry ({exc})") from exc
            if placement is None:
                raise MediaUnavailable("no media server (SFU worker) is available; retry later")
            self._epochs[placement.worker_id] = placement.epoch
            if placement.new:
                self.placements += 1
                log.info("sfu: room %s placed on worker %s", room_id, placement.worker_id)
            try:
                remote = await self._connect(placement.worker_id, placement.url)
            except WorkerLost as exc:
                log.warning("sfu: worker %s unreachable: %s", placement.worker_id, exc)
                self._found_dead(placement.worker_id)
                continue
            self._peers[peer_id] = _Peer(placement.worker_id, room_id)
            return remote
        raise MediaUnavailable("no media server (SFU worker) could be reached; retry later")

    def _found_dead(self, worker_id: str) -> None:
        self._dead[worker_id] = (time.monotonic() + DEAD_HOLD_S, self._epochs.get(worker_id, ""))

    def _excluded(self) -> dict[str, str]:
        """The workers this node found dead, with the epoch of the process it found dead (the
        registry shares the finding with every node; see :meth:`WorkerRegistry.place`)."""
        now = time.monotonic()
        for worker_id in [w for w, (until, _) in self._dead.items() if until <= now]:
            del self._dead[worker_id]
        return {w: epoch for w, (_, epoch) in sorted(self._dead.items())}

    async def _connect(self, worker_id: str, url: str) -> RemoteWorker:
        remote = self._remotes.get(worker_id)
        if remote is not None and not remote.lost:
            return remote
        pending = self._connecting.get(worker_id)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[RemoteWorker] = asyncio.get_running_loop().create_future()
        self._connecting[worker_id] = future
        try:
            remote = RemoteWorker(
                worker_id,
                url,
                self._on_lost,
                token=self.token,
                call_timeout_s=self.settings.call_timeout_s,
                tls=self.settings.rpc_tls,
            )
            await remote.connect(self.settings.connect_timeout_s)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it themselves
            raise
        finally:
            del self._connecting[worker_id]
        self._remotes[worker_id] = remote
        future.set_result(remote)
        return remote

    async def _call(self, remote: RemoteWorker, method: str, **args: Any) -> Any:
        try:
            attributes = {"rpc.method": method, "liveclass.worker": remote.worker_id}
            with tracing.client("liveclass.sfu.call", **attributes):
                return await remote.call(method, **args)
        except WorkerLost as exc:
            raise MediaUnavailable(
                "the media server was lost; your media is being reset, publish again"
            ) from exc

    # -- losing workers ------------------------------------------------------------------------

    def _on_lost(self, remote: RemoteWorker, reason: str) -> None:
        if self._closed or self._remotes.get(remote.worker_id) is not remote:
            return
        task = asyncio.get_running_loop().create_task(self._lost(remote, reason, reconnect=True))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _lost(self, remote: RemoteWorker, reason: str, *, reconnect: bool) -> None:
        """The worker's connection is gone: its peers were closed there. Exclude it at once
        (no new placement on it), try to reconnect within ``reconnect_s``, then reset the
        sessions whose media was there."""
        worker_id = remote.worker_id
        if self._remotes.get(worker_id) is remote:
            del self._remotes[worker_id]
        self._found_dead(worker_id)
        peers = [p for p, peer in self._peers.items() if peer.worker_id == worker_id]
        for peer_id in peers:
            self._peers.pop(peer_id, None)
        alive = False
        if reconnect:
            deadline = time.monotonic() + self.settings.reconnect_s
            while not alive and time.monotonic() < deadline and not self._closed:
                try:
                    await self._connect(worker_id, remote.url)
                    alive = True
                except WorkerLost:
                    await asyncio.sleep(min(0.1, max(0.0, deadline - time.monotonic())))
        if alive:
            self._dead.pop(worker_id, None)
            log.warning("sfu: connection to worker %s was lost (%s) and is back", worker_id, reason)
        else:
            self.workers_lost += 1
            log.warning(
                "sfu: worker %s lost (%s): resetting media of %d connections",
                worker_id,
                reason,
                len(peers),
            )
        self._reset(peers, RESET_WORKER_LOST)

    def _reset(self, peers: list[str], reason: str) -> None:
        for peer_id in peers:
            self._forget(peer_id)
            reset = self._resets.get(peer_id)
            if reset is not None:
                self.resets += 1
                try:
                    reset(reason)
                except Exception:
                    log.exception("sfu: resetting %s failed", peer_id)

    def _start_monitor(self) -> None:
        if self._monitor is None and not self._closed:
            self._monitor = asyncio.get_running_loop().create_task(self._watch())

    async def _watch(self) -> None:
        while not self._closed:
            await asyncio.sleep(self.settings.monitor_interval_s)
            try:
                await self._check()
            except RegistryUnavailable as exc:
                log.debug("sfu: registry check skipped: %s", exc)
            except Exception:
                log.exception("sfu: registry check failed")

    async def _check(self) -> None:
        """Workers whose registration expired are lost; sessions on another worker than their
        room's recorded one are reset."""
        rooms = sorted({peer.room_id for peer in self._peers.values()})
        view = await self.registry.view(rooms)
        # Only while other workers' registrations are fresh: when every registration lapsed
        # at once, the registry itself was out of reach (a failover), not the workers.
        absent = {w for w in self._remotes if w not in view.live} if view.live else set()
        for worker_id in absent & self._absent:  # absent at two checks in a row
            remote = self._remotes.get(worker_id)
            if remote is None or remote.lost:
                continue  # lost meanwhile
            remote.lost = True  # no reconnect: its registration is gone
            await remote.close()
            await self._lost(remote, "its registration expired", reconnect=False)
        self._absent = absent
        for worker_id, (_, epoch) in list(self._dead.items()):
            if worker_id not in view.live or view.epochs.get(worker_id, epoch) != epoch:
                # Gone from placement anyway, or restarted (another process under the id).
                del self._dead[worker_id]
        moved = [
            peer_id
            for peer_id, peer in self._peers.items()
            if (placed := view.rooms.get(peer.room_id)) is not None
            and placed != peer.worker_id
            and placed in view.live
            and placed not in self._dead
        ]
        for peer_id in moved:
            peer = self._peers.get(peer_id)
            if peer is None:
                continue  # closed meanwhile
            log.warning(
                "sfu: room %s is now on worker %s; moving %s off %s",
                peer.room_id,
                view.rooms.get(peer.room_id),
                peer_id,
                peer.worker_id,
            )
            stale = self._remote_of(peer_id)
            self._forget(peer_id)
            if stale is not None:
                with contextlib.suppress(Exception):
                    await stale.call("close_peer", peer_id=peer_id)
        self._reset(moved, RESET_ROOM_MOVED)

    async def close(self) -> None:
        """Close every RPC connection (the workers close this node's peers)."""
        self._closed = True
        if self._monitor is not None:
            self._monitor.cancel()
        for task in tuple(self._tasks):
            task.cancel()
        for remote in list(self._remotes.values()):
            await remote.close()
        self._remotes.clear()


class PlacementCollector(Collector):
    """``liveclass_sfu_workers_connected``, ``liveclass_sfu_workers_lost_total``,
    ``liveclass_media_resets_total`` and ``liveclass_sfu_placements_total`` of one node."""

    def __init__(self, workers: PlacedWorkers) -> None:
        self.workers = workers

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        w = self.workers
        yield GaugeMetricFamily(
            "liveclass_sfu_workers_connected",
            "SFU workers this node has an RPC connection to",
            w.connected_workers,
        )
        yield CounterMetricFamily(
            "liveclass_sfu_workers_lost",
            "SFU workers this node lost (connection gone, call timed out, registration expired)",
            value=w.workers_lost,
        )
        yield CounterMetricFamily(
            "liveclass_media_resets",
            "media.reset frames sent (a session's media was on a lost or replaced worker)",
            value=w.resets,
        )
        yield CounterMetricFamily(
            "liveclass_sfu_placements", "Rooms this node placed on a worker", value=w.placements
        )
