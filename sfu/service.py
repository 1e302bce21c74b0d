"""A Worker as its own process (``liveclass sfu``): the RPC endpoint signaling nodes call.

mediasoup's deployment shape: one Worker per core, each a process of its own; signaling nodes
place rooms on workers (see :mod:`signaling.sfu_placement`) and drive each worker's
:class:`sfu.worker.Worker` over :mod:`sfu.rpc`. On the same port the service answers
``GET /healthz`` (200 while it serves), ``GET /readyz`` (200 while it is registered for placement)
and ``GET /metrics`` (the worker's ``liveclass_sfu_*`` metrics, Prometheus text); these three are
open to probes and Prometheus (they carry no secret). ``/rpc/<worker_id>`` upgrades only a
request whose bearer token the ``verify`` callable accepts (:mod:`sfu.rpc`); any other answer is
HTTP 401, logged with the reason, before a connection exists.

Each node connection is a namespace: the worker prefixes the node's peer ids with the
connection's number, so two nodes' peers never collide, and closes the node's peers when its
connection closes (the node is gone, or will reset those sessions itself).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import ssl
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from . import rpc
from .metrics import WorkerCollector
from .transport import MediaError
from .worker import Worker

log = logging.getLogger(__name__)

_connections = itertools.count(1)


def _response(
    status: HTTPStatus, body: bytes, content_type: str, *extra: tuple[str, str]
) -> Response:
    headers = Headers([("Content-Type", content_type), ("Content-Length", str(len(body))), *extra])
    return Response(status.value, status.phrase, headers, body)


class _NodeConnection:
    """One signaling node's RPC connection: its peers, one writer, calls ordered per peer."""

    def __init__(self, service: WorkerService, ws: ServerConnection) -> None:
        self.service = service
        self.ws = ws
        self.prefix = f"c{next(_connections)}/"
        self.peers: set[str] = set()  # the node's peer ids
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}  # peer -> lock, calls holding it
        self._out: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._tasks: set[asyncio.Task[None]] = set()

    async def serve(self) -> None:
        writer = asyncio.get_running_loop().create_task(self._write())
        try:
            async for data in self.ws:
                try:
                    frame = rpc.unpack(data)
                except rpc.RpcFrameError as exc:
                    log.warning("sfu rpc %s: dropped a frame: %s", self.prefix, exc)
                    continue
                if frame["t"] != "call":
                    continue
                task = asyncio.get_running_loop().create_task(self._call(frame))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        except ConnectionClosed:
            pass
        finally:
            for task in tuple(self._tasks):
                task.cancel()
            self._out.put_nowait(None)
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
            await self._close_peers()

    async def _write(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            while (data := await self._out.get()) is not None:
                await self.ws.send(data)

    async def _call(self, frame: dict[str, Any]) -> None:
        call_id = frame.get("id")
        method = frame.get("method")
        args = frame.get("args")
        if not isinstance(call_id, int):
            log.warning("sfu rpc %s: dropped a call without an id", self.prefix)
            return
        if method not in rpc.METHODS or not isinstance(args, dict):
            self._out.put_nowait(rpc.error(call_id, "bad_request", f"no method {method!r}"))
            return
        peer = args.get("peer_id")
        if not isinstance(peer, str):
            self._out.put_nowait(rpc.error(call_id, "bad_request", "peer_id is missing"))
            return
        # Per peer in arrival order (asyncio locks are FIFO), as the node sent them.
        lock, calls = self._locks.get(peer) or (asyncio.Lock(), 0)
        self._locks[peer] = (lock, calls + 1)
        try:
            async with lock:
                await self._reply(call_id, str(method), peer, args)
        finally:
            lock, calls = self._locks[peer]
            if calls == 1:
                del self._locks[peer]
            else:
                self._locks[peer] = (lock, calls - 1)

    async def _reply(self, call_id: int, method: str, peer: str, args: dict[str, Any]) -> None:
        try:
            value = await self._run(method, peer, dict(args))
        except MediaError as exc:
            self._out.put_nowait(rpc.error(call_id, exc.code, exc.message))
        except TypeError as exc:
            self._out.put_nowait(rpc.error(call_id, "bad_request", str(exc)))
        except Exception as exc:
            log.exception("sfu rpc %s: %s failed for %s", self.prefix, method, peer)
            self._out.put_nowait(rpc.error(call_id, "internal", f"{method} failed: {exc!r}"))
        else:
            self._out.put_nowait(rpc.result(call_id, value))

    async def _run(self, method: str, peer: str, args: dict[str, Any]) -> Any:
        args["peer_id"] = self.prefix + peer
        if method == "subscribe":
            args["send_offer"] = self._offers_for(peer)
            args["send_layers"] = self._layers_for(peer)
        if method in ("publish", "subscribe"):
            self.peers.add(peer)
        elif method == "close_peer":
            self.peers.discard(peer)
        return await getattr(self.service.worker, method)(**args)

    def _layers_for(self, peer: str) -> Callable[[dict[str, str]], None]:
        def send_layers(producers: dict[str, str]) -> None:
            self._out.put_nowait(rpc.layers(peer, producers))

        return send_layers

    def _offers_for(self, peer: str) -> Callable[[str, int, dict[str, dict[str, str]]], None]:
        def send_offer(sdp: str, version: int, producers: dict[str, dict[str, str]]) -> None:
            self._out.put_nowait(rpc.offer(peer, sdp, version, producers))

        return send_offer

    async def _close_peers(self) -> None:
        for peer in tuple(self.peers):
            try:
                await self.service.worker.close_peer(self.prefix + peer)
            except Exception:
                log.exception("sfu rpc %s: closing %s failed", self.prefix, peer)
        if self.peers:
            log.info("sfu rpc %s: node gone, closed its %d peers", self.prefix, len(self.peers))
        self.peers.clear()


class WorkerService:
    """Serves a :class:`Worker` to signaling nodes.

    Args:
        worker: the Worker (already made, with its ICE addresses).
        worker_id: the name it is registered under; ``/rpc/<other id>`` is refused.
        verify: checks a node's bearer token for ``worker_id``; raises
            :class:`sfu.rpc.Unauthorized` to refuse the connection (HTTP 401).
        ready: whether the worker serves and takes new rooms (``/readyz``; registered, or
            riding out a registry failover: :attr:`signaling.sfu_registry.Registration.ready`).
        registered: whether its registration is current now (``liveclass_sfu_registered``).
        draining: whether it is out of placement (drained: it keeps its rooms, takes no new one),
            for ``/metrics``.
    """

    def __init__(
        self,
        worker: Worker,
        worker_id: str,
        verify: rpc.VerifyToken,
        ready: Callable[[], bool] = lambda: True,
        draining: Callable[[], bool] = lambda: False,
        refused: Callable[[str], None] = lambda address: None,
        registered: Callable[[], bool] | None = None,
    ) -> None:
        self.worker = worker
        self.worker_id = worker_id
        self.verify = verify
        self.ready = ready
        self.registered = registered or ready
        self.draining = draining
        #: Told the peer address of each refused RPC handshake (the audit log's line).
        self.refused = refused
        #: RPC handshakes refused with 401, for ``/metrics``.
        self.refusals = 0
        self.connections: set[_NodeConnection] = set()
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self.registry.register(WorkerCollector(worker))
        self.registry.register(_ServiceCollector(self))
        self._server: Server | None = None

    def load(self) -> int:
        """What placement compares: the peers (participants' media connections) held."""
        return len(self.worker.peers)

    def rooms(self) -> list[str]:
        """The rooms with a Router here (a breakout's Router counts for its room)."""
        return sorted({router_id.split("/", 1)[0] for router_id in self.worker.routers})

    async def start(self, host: str, port: int, tls: ssl.SSLContext | None = None) -> Server:
        """Listen for nodes (over TLS with ``tls``: ``wss://`` and ``https://``).

        Raises:
            OSError: the address cannot be bound.
        """
        self._server = await serve(
            self._handle,
            host,
            port,
            process_request=self._process_request,
            compression=None,
            max_size=1 << 20,  # SDP with many m-lines stays far below 1 MiB
            ping_interval=5,
            ping_timeout=5,
            server_header="liveclass-sfu",
            ssl=tls,
        )
        return self._server

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path = request.path.split("?", 1)[0]
        if path == "/healthz":
            return _response(HTTPStatus.OK, b"ok\n", "text/plain")
        if path == "/readyz":
            if self.ready():
                return _response(HTTPStatus.OK, b"ready\n", "text/plain")
            return _response(HTTPStatus.SERVICE_UNAVAILABLE, b"not registered\n", "text/plain")
        if path == "/metrics":
            return _response(HTTPStatus.OK, generate_latest(self.registry), "text/plain")
        if path == rpc.PATH + self.worker_id:
            return self._authenticate(connection, request)
        return _response(HTTPStatus.NOT_FOUND, b"no such worker\n", "text/plain")

    def _authenticate(self, connection: ServerConnection, request: Request) -> Response | None:
        """None (upgrade) for a token ``verify`` accepts, else 401 (RFC 6750 section 3)."""
        try:
            self.verify(rpc.bearer_token(request.headers.get_all("Authorization")), self.worker_id)
        except rpc.Unauthorized as exc:
            self.refusals += 1
            log.warning(
                "sfu rpc: refused a node from %s with HTTP 401: %s (does it have this worker's "
                "--secrets, and a clock within seconds of this one?)",
                connection.remote_address,
                exc,
            )
            peer = connection.remote_address
            self.refused(str(peer[0]) if isinstance(peer, tuple) and peer else str(peer))
            return _response(
                HTTPStatus.UNAUTHORIZED,
                b"unauthorized\n",
                "text/plain",
                ("WWW-Authenticate", 'Bearer realm="liveclass-sfu", error="invalid_token"'),
            )
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        connection = _NodeConnection(self, ws)
        self.connections.add(connection)
        log.info("sfu rpc %s: node connected from %s", connection.prefix, ws.remote_address)
        try:
            await connection.serve()
        finally:
            self.connections.discard(connection)

    async def close(self) -> None:
        """Stop serving: every node's connection closes (the nodes reset their sessions)."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        await self.worker.close()


class _ServiceCollector(Collector):
    def __init__(self, service: WorkerService) -> None:
        self.service = service

    def collect(self) -> Any:
        yield GaugeMetricFamily(
            "liveclass_ready",
            "1 while this worker's /readyz answers 200 (registered for placement)",
            int(self.service.ready()),
        )
        yield GaugeMetricFamily(
            "liveclass_sfu_registered",
            "1 while this worker's registration is current (0 through a registry outage)",
            int(self.service.registered()),
        )
        yield GaugeMetricFamily(
            "liveclass_sfu_rpc_connections",
            "Signaling nodes connected to this worker",
            len(self.service.connections),
        )
        yield GaugeMetricFamily(
            "liveclass_sfu_peers",
            "Participants' media connections (the load placement reads)",
            self.service.load(),
        )
        yield GaugeMetricFamily(
            "liveclass_sfu_draining",
            "1 while this worker is drained: no new room is placed on it, its rooms stay",
            int(self.service.draining()),
        )
        yield CounterMetricFamily(
            "liveclass_sfu_rpc_refusals",
            "RPC connections refused with HTTP 401 (no valid token of the cluster's secrets)",
            value=self.service.refusals,
        )
