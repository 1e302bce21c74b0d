"""A real local Redis Cluster (3 masters, 3 replicas) for tests, started and stopped with the
operator scripts in deploy/redis-cluster/ so the tests exercise them too."""

from __future__ import annotations

import atexit
import os
import random
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from redis.crc import key_slot

from signaling.redis_cluster import ClusterNode, parse_cluster_nodes

SCRIPTS = Path(__file__).resolve().parent.parent / "deploy" / "redis-cluster"
BUS_OFFSET = 10_000  # the cluster bus listens on port + 10000


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _accepts(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def free_cluster_ports(count: int = 6) -> list[int]:
    """``count`` consecutive ports whose cluster bus ports are free too (20000-29999 + bus)."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20_000, 30_000 - count)
        ports = list(range(base, base + count))
        if all(_free(p) and _free(p + BUS_OFFSET) for p in ports):
            return ports
    raise RuntimeError("no free ports for a Redis Cluster")


@dataclass
class RedisCluster:
    """``password``: AUTH on every node (and an ACL user ``liveclass`` with it); ``tls_dir``:
    TLS only, from its ``ca.crt``, ``redis.crt`` and ``redis.key`` (start.sh's options)."""

    directory: Path
    ports: list[int] = field(default_factory=free_cluster_ports)
    seeds: str = ""
    password: str | None = None
    tls_dir: Path | None = None
    #: start.sh's --node-timeout (ms): how soon a dead master's replica is promoted.
    node_timeout_ms: int = 2000

    def start(self) -> RedisCluster:
        atexit.register(self.stop)
        options = ["--dir", str(self.directory), "--ports", ",".join(map(str, self.ports))]
        options += ["--node-timeout", str(self.node_timeout_ms)]
        if self.password is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
            password_file = self.directory / "password"
            password_file.write_text(self.password)
            password_file.chmod(0o600)
            options += ["--password-file", str(password_file)]
        if self.tls_dir is not None:
            options += ["--tls-dir", str(self.tls_dir)]
        done = subprocess.run(
            ["bash", str(SCRIPTS / "start.sh"), *options],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if done.returncode != 0:
            self.stop()
            raise RuntimeError(f"redis cluster did not start: {done.stderr}")
        self.seeds = done.stdout.strip()
        return self

    def stop(self) -> None:
        subprocess.run(
            ["bash", str(SCRIPTS / "stop.sh"), "--dir", str(self.directory)],
            capture_output=True,
            timeout=30,
        )

    def cli(self, port: int, *args: str) -> str:
        tls = ["--tls", "--cacert", str(self.tls_dir / "ca.crt")] if self.tls_dir else []
        env = {**os.environ, "REDISCLI_AUTH": self.password} if self.password else None
        return subprocess.run(
            ["redis-cli", *tls, "-h", "127.0.0.1", "-p", str(port), *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
            env=env,
        ).stdout

    # -- inspecting and breaking it (failover and migration tests) -----------------------------

    def nodes(self, port: int | None = None) -> list[ClusterNode]:
        """``CLUSTER NODES`` as seen by ``port`` (default: the first live node)."""
        for candidate in [port] if port is not None else self.ports:
            try:
                return parse_cluster_nodes(self.cli(candidate, "cluster", "nodes"))
            except subprocess.CalledProcessError:
                continue
        raise RuntimeError("no live cluster node")

    def node_id(self, port: int) -> str:
        return self.cli(port, "cluster", "myid").strip()

    def owner_of(self, key: str, port: int | None = None) -> int:
        """The port of the master serving ``key``'s slot."""
        slot = key_slot(key.encode())
        for node in self.nodes(port):
            if node.master and not node.failed and any(a <= slot <= b for a, b in node.slots):
                return node.address[1]
        raise RuntimeError(f"no master serves slot {slot}")

    def replica_of(self, master_port: int) -> int:
        master = self.node_id(master_port)
        for line in self.cli(master_port, "cluster", "replicas", master).splitlines():
            address = line.split()[1].split("@")[0]
            return int(address.rpartition(":")[2])
        raise RuntimeError(f"{master_port} has no replica")

    def kill(self, port: int) -> None:
        """SIGKILL one node, as a crash would, and wait until its port refuses."""
        pid = int((self.directory / str(port) / "redis.pid").read_text())
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while _accepts(port):
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis on {port} did not die")
            time.sleep(0.02)

    def restart(self, port: int) -> None:
        """Start a killed node again from its config, as a supervisor would; it rejoins the
        cluster (a failed-over master comes back as a replica of the promoted one)."""
        subprocess.run(
            ["redis-server", str(self.directory / str(port) / "redis.conf")],
            capture_output=True,
            timeout=10,
            check=True,
        )
        deadline = time.monotonic() + 10
        while not _accepts(port):
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis on {port} did not come back")
            time.sleep(0.02)

    def wait_replica_of(self, port: int, master: int, timeout: float = 15.0) -> None:
        """Wait until the node on ``port`` replicates ``master`` with its link up."""
        deadline = time.monotonic() + timeout
        while True:
            info = self.cli(port, "info", "replication")
            if f"master_port:{master}" in info and "master_link_status:up" in info:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{port} does not replicate {master}: {info}")
            time.sleep(0.05)

    def wait_master(self, port: int, timeout: float = 15.0) -> float:
        """Wait until the node on ``port`` is a master (a promoted replica); returns seconds."""
        start = time.monotonic()
        while "role:master" not in self.cli(port, "info", "replication"):
            if time.monotonic() - start > timeout:
                raise TimeoutError(f"{port} was not promoted in {timeout}s")
            time.sleep(0.02)
        return time.monotonic() - start

    def migrate_slot(self, slot: int, source: int, target: int) -> None:
        """Move ``slot`` from master ``source`` to master ``target`` the way redis-cli --cluster
        reshard does: IMPORTING/MIGRATING, MIGRATE its keys in batches, then SETSLOT NODE."""
        source_id, target_id = self.node_id(source), self.node_id(target)
        self.cli(target, "cluster", "setslot", str(slot), "importing", source_id)
        self.cli(source, "cluster", "setslot", str(slot), "migrating", target_id)
        while keys := self.cli(source, "cluster", "getkeysinslot", str(slot), "100").split():
            self.cli(source, "migrate", "127.0.0.1", str(target), "", "0", "5000", "keys", *keys)
        for port in self.ports:
            node = next((n for n in self.nodes(port) if n.address[1] == port), None)
            if node is not None and node.master:
                self.cli(port, "cluster", "setslot", str(slot), "node", target_id)


def room_on(cluster: RedisCluster, port: int, prefix: str) -> str:
    """A room name whose keys live on the master at ``port``."""
    for i in range(10_000):
        room = f"{prefix}-{i}"
        if cluster.owner_of(f"room:{{{room}}}:log") == port:
            return room
    raise RuntimeError("no room name found")
