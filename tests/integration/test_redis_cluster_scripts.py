"""deploy/redis-cluster/: the scripts start a ready 6-node cluster and stop every node."""

from __future__ import annotations

import socket
from pathlib import Path

from tests.redis_cluster import RedisCluster


def test_start_gives_three_masters_with_every_slot_and_three_replicas_and_stop_stops_all(
    tmp_path: Path,
) -> None:
    cluster = RedisCluster(tmp_path / "cluster").start()
    try:
        assert cluster.seeds == ",".join(f"redis://127.0.0.1:{p}" for p in cluster.ports)
        for port in cluster.ports:
            assert "cluster_state:ok" in cluster.cli(port, "cluster", "info")
        nodes = [
            line.split() for line in cluster.cli(cluster.ports[0], "cluster", "nodes").splitlines()
        ]
        masters = [n for n in nodes if "master" in n[2]]
        replicas = [n for n in nodes if "slave" in n[2]]
        assert len(masters) == 3 and len(replicas) == 3
        assert {r[3] for r in replicas} == {m[0] for m in masters}  # one replica per master
        slots = 0
        for master in masters:
            for spec in master[8:]:
                low, _, high = spec.partition("-")
                slots += int(high or low) - int(low) + 1
        assert slots == 16384
    finally:
        cluster.stop()
    for port in cluster.ports:
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still answers"
