"""A real local Redis Cluster (3 masters, 3 replicas) for tests, started and stopped with the
operator scripts in deploy/redis-cluster/ so the tests exercise them too."""

from __future__ import annotations

import atexit
import random
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent.parent / "deploy" / "redis-cluster"
BUS_OFFSET = 10_000  # the cluster bus listens on port + 10000


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


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
    directory: Path
    ports: list[int] = field(default_factory=free_cluster_ports)
    seeds: str = ""

    def start(self) -> RedisCluster:
        atexit.register(self.stop)
        done = subprocess.run(
            [
                "bash",
                str(SCRIPTS / "start.sh"),
                "--dir",
                str(self.directory),
                "--ports",
                ",".join(map(str, self.ports)),
            ],
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
        return subprocess.run(
            ["redis-cli", "-h", "127.0.0.1", "-p", str(port), *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
