"""The scale-out deployment under test: a local 6-node Redis Cluster and N ``liveclass serve
--redis-cluster`` nodes sharing one token secret, all on 127.0.0.1.

The cluster is started and stopped with the operator scripts (``deploy/redis-cluster/start.sh``
and ``stop.sh``). Its servers daemonize, so they are not ``bench.common.Child`` processes: every
started cluster is registered here and stopped when its ``async with`` ends, and by ``atexit``
when the benchmark dies another way.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import psutil
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.crc import key_slot

from bench.common import HOST, REPO, Child, Server, pid_cpu_s, start_server, start_workers
from signaling.redis_cluster import parse_cluster_nodes

SCRIPTS = REPO / "deploy" / "redis-cluster"
BUS_OFFSET = 10_000  # the cluster bus listens on port + 10000
_RUNNING: dict[Path, None] = {}


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def _accepts(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((HOST, port)) == 0


def free_cluster_ports(count: int = 6) -> list[int]:
    """``count`` consecutive free ports in 10000-19999 whose bus ports (+10000) are free too."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(10_000, 20_000 - count)
        ports = list(range(base, base + count))
        if all(_port_free(p) and _port_free(p + BUS_OFFSET) for p in ports):
            return ports
    raise RuntimeError("no free ports for a Redis Cluster")


def _stop_script(directory: Path) -> None:
    subprocess.run(
        ["bash", str(SCRIPTS / "stop.sh"), "--dir", str(directory)],
        capture_output=True,
        timeout=30,
        check=False,
    )


@atexit.register
def _stop_leftovers() -> None:
    for directory in list(_RUNNING):
        _stop_script(directory)
        _RUNNING.pop(directory, None)


def redis_server_version() -> str:
    try:
        out = subprocess.run(
            ["redis-server", "--version"], capture_output=True, text=True, timeout=10
        ).stdout
    except OSError:
        return "not installed"
    return next((w[2:] for w in out.split() if w.startswith("v=")), out.strip())


@dataclass
class RedisCluster:
    """A 3-master, 3-replica cluster started by ``deploy/redis-cluster/start.sh``.

    Use as ``async with RedisCluster() as cluster``: started on entry, stopped (``stop.sh``, then
    the directory removed) on exit, whatever happened.
    """

    ports: list[int] = field(default_factory=free_cluster_ports)
    directory: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="lc-redis-")))
    seeds: str = ""
    #: CPU seconds of the servers killed so far (``cpu_s`` keeps counting them)
    killed_cpu_s: float = 0.0
    _clients: dict[int, Redis] = field(default_factory=dict)

    async def __aenter__(self) -> RedisCluster:
        _RUNNING[self.directory] = None
        cmd = ["bash", str(SCRIPTS / "start.sh"), "--dir", str(self.directory)]
        cmd += ["--ports", ",".join(map(str, self.ports))]
        try:
            done = await asyncio.to_thread(
                subprocess.run, cmd, capture_output=True, text=True, timeout=60, check=False
            )
            if done.returncode != 0:
                raise RuntimeError(f"redis cluster did not start: {done.stderr.strip()}")
        except BaseException:
            await self.stop()
            raise
        self.seeds = done.stdout.strip()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def stop(self) -> None:
        for client in self._clients.values():
            with contextlib.suppress(Exception):
                await client.aclose()
        self._clients.clear()
        await asyncio.to_thread(_stop_script, self.directory)
        _RUNNING.pop(self.directory, None)
        shutil.rmtree(self.directory, ignore_errors=True)

    # -- reading it ------------------------------------------------------------------------------

    def client(self, port: int) -> Redis:
        """A plain connection to one node (1 s timeouts, no retries: a dead node fails fast)."""
        if port not in self._clients:
            self._clients[port] = Redis(
                host=HOST,
                port=port,
                socket_timeout=1,
                socket_connect_timeout=1,
                retry=Retry(NoBackoff(), 0),
            )
        return self._clients[port]

    def pid(self, port: int) -> int | None:
        path = self.directory / str(port) / "redis.pid"
        with contextlib.suppress(OSError, ValueError):
            return int(path.read_text())
        return None

    def pids(self) -> list[int]:
        return [p for p in map(self.pid, self.ports) if p is not None]

    def cpu_s(self) -> float:
        """User + system CPU seconds of the cluster's servers, the killed ones included."""
        return sum(map(pid_cpu_s, self.pids())) + self.killed_cpu_s

    async def commandstats(self) -> dict[int, dict[str, int]]:
        """``INFO commandstats`` ``calls`` per command, per live node: {port: {command: calls}}.

        Calls include the commands scripts run (XADD inside EVAL) and, on replicas, the writes
        they apply from their master's replication stream."""
        out: dict[int, dict[str, int]] = {}
        for port in self.ports:
            try:
                info: dict[str, Any] = await self.client(port).info("commandstats")
            except Exception:
                continue
            out[port] = {
                k.removeprefix("cmdstat_"): int(v["calls"])
                for k, v in info.items()
                if k.startswith("cmdstat_")
            }
        return out

    async def roles(self) -> dict[int, str]:
        """``master`` or ``slave`` per live node."""
        out = {}
        for port in self.ports:
            with contextlib.suppress(Exception):
                out[port] = str((await self.client(port).info("replication"))["role"])
        return out

    async def owner_of(self, key: str) -> int:
        """The port of the master serving ``key``'s slot."""
        slot = key_slot(key.encode())
        text = await self.client(self.ports[0]).execute_command("CLUSTER", "NODES")
        text = text.decode() if isinstance(text, bytes) else str(text)
        for node in parse_cluster_nodes(text):
            if node.master and not node.failed and any(a <= slot <= b for a, b in node.slots):
                return node.address[1]
        raise RuntimeError(f"no master serves slot {slot}")

    async def replica_of(self, master: int) -> int:
        node_id = await self.client(master).execute_command("CLUSTER", "MYID")
        node_id = node_id.decode() if isinstance(node_id, bytes) else str(node_id)
        lines = await self.client(master).execute_command("CLUSTER", "REPLICAS", node_id)
        for line in lines:
            text = line.decode() if isinstance(line, bytes) else str(line)
            return int(text.split()[1].split("@")[0].rpartition(":")[2])
        raise RuntimeError(f"{master} has no replica")

    # -- breaking it -----------------------------------------------------------------------------

    async def kill(self, port: int) -> int:
        """SIGKILL the node on ``port`` (a crash); returns the monotonic ns of the kill. Its
        pidfile is removed so that ``stop.sh`` never signals a reused pid."""
        pid = self.pid(port)
        if pid is None or "redis" not in psutil.Process(pid).name():
            raise RuntimeError(f"no redis-server of ours on {port}")
        self.killed_cpu_s += pid_cpu_s(pid)
        killed_ns = time.monotonic_ns()
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10  # a zombie still exists: poll the port, not the pid
        while time.monotonic() < deadline:
            if not _accepts(port):
                break
            await asyncio.sleep(0.01)
        (self.directory / str(port) / "redis.pid").unlink(missing_ok=True)
        client = self._clients.pop(port, None)
        if client is not None:
            with contextlib.suppress(Exception):
                await client.aclose()
        return killed_ns

    async def restart(self, port: int) -> None:
        """Start a killed node again from its config (an operator restarting it): it rejoins the
        cluster, as a replica of the master promoted in its place."""
        conf = self.directory / str(port) / "redis.conf"
        await asyncio.to_thread(
            subprocess.run, ["redis-server", str(conf)], capture_output=True, timeout=30, check=True
        )

    async def wait_master(self, port: int, timeout_s: float) -> int:
        """Poll ``port`` every 10 ms until it is a master; returns the monotonic ns it was seen.

        Raises:
            TimeoutError: not promoted within ``timeout_s``.
        """
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                if (await self.client(port).info("replication"))["role"] == "master":
                    return time.monotonic_ns()
            await asyncio.sleep(0.01)
        raise TimeoutError(f"{port} was not promoted within {timeout_s:.0f} s")


async def start_nodes(
    cluster: RedisCluster, count: int, args: Sequence[str] = (), tag: str = ""
) -> list[Server]:
    """``count`` ``liveclass serve --redis-cluster`` nodes (``node1``...) sharing one secret,
    each on a free port with its own data dir; stops the started ones if one fails."""
    secret = secrets.token_urlsafe(32)
    nodes: list[Server] = []
    try:
        for i in range(count):
            node_args = ["--redis-cluster", cluster.seeds, "--node-id", f"node{i + 1}", *args]
            nodes.append(
                await start_server("liveclass", node_args, tag=f"{tag}-node{i + 1}", secret=secret)
            )
    except BaseException:
        await stop_servers(nodes)
        raise
    return nodes


async def stop_servers(servers: Sequence[Server]) -> None:
    await asyncio.gather(*(s.stop() for s in servers), return_exceptions=True)


# -- one side of a comparison ------------------------------------------------------------------

EMBEDDED = "embedded"
CLUSTER = "cluster"
SIDES = (EMBEDDED, CLUSTER)


@dataclass
class Deployment:
    """What one side runs: the embedded single node, or ``nodes`` cluster nodes and the cluster."""

    side: str
    nodes: list[Server]
    cluster: RedisCluster | None = None

    @property
    def label(self) -> str:
        return EMBEDDED if self.cluster is None else f"{CLUSTER}, {len(self.nodes)} nodes"

    def nodes_cpu_s(self) -> float:
        """User + system CPU seconds of the liveclass node processes."""
        return sum(node.cpu_s() for node in self.nodes)

    def redis_cpu_s(self) -> float:
        return self.cluster.cpu_s() if self.cluster is not None else 0.0

    def extra_pids(self) -> list[int]:
        """Our processes that are not children (the daemonized Redis servers)."""
        return self.cluster.pids() if self.cluster is not None else []

    def metrics(self) -> dict[str, float]:
        """Every node's /metrics, summed per sample."""
        out: dict[str, float] = {}
        for node in self.nodes:
            for key, value in node.metrics().items():
                out[key] = out.get(key, 0.0) + value
        return out

    async def start_workers(
        self,
        n_workers: int,
        students: Sequence[tuple[str, str]],
        base: dict[str, Any],
        schedule: Sequence[float] | None = None,
        tag: str = "worker",
    ) -> list[tuple[int, Child]]:
        """Students alternate over the nodes (student i on node i mod nodes), each node's share
        over ``n_workers / nodes`` worker processes; returns (node index, worker) pairs."""
        count = len(self.nodes)
        out: list[tuple[int, Child]] = []
        for k, node in enumerate(self.nodes):
            cfg = {**base, "port": node.port, "secret": node.secret}
            share = list(students[k::count])
            plan = list(schedule[k::count]) if schedule is not None else None
            per_node = max(1, n_workers // count)
            made = await start_workers(per_node, share, cfg, schedule=plan, tag=f"{tag}-n{k + 1}w")
            out += [(k, w) for w in made]
        return out


@contextlib.asynccontextmanager
async def deploy(
    side: str, nodes: int, liveclass_args: Sequence[str] = (), tag: str = ""
) -> AsyncIterator[Deployment]:
    """Start one side (fresh processes, free ports) and stop all of it on exit."""
    if side == EMBEDDED:
        server = await start_server("liveclass", liveclass_args, tag=f"{tag}-embedded")
        try:
            yield Deployment(side, [server])
        finally:
            await server.stop()
        return
    async with RedisCluster() as cluster:
        started = await start_nodes(cluster, nodes, liveclass_args, tag=f"{tag}-cluster")
        try:
            yield Deployment(side, started, cluster)
        finally:
            await stop_servers(started)
