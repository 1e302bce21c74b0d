"""deploy/redis-cluster/: the scripts start a ready 6-node cluster, stop every node, and start a
dead node again (failing back to it) without wiping the cluster."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

from tests.redis_cluster import SCRIPTS, RedisCluster


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


def test_restart_node_brings_a_killed_master_back_as_a_replica_and_fails_back(
    tmp_path: Path,
) -> None:
    cluster = RedisCluster(tmp_path / "cluster", node_timeout_ms=1000).start()
    try:
        key = "room:{restart}"
        master = cluster.owner_of(key)
        replica = cluster.replica_of(master)
        cluster.cli(master, "set", key, "before")
        cluster.cli(master, "wait", "1", "1000")  # the replica holds it before the crash
        cluster.kill(master)
        cluster.wait_master(replica)
        cluster.cli(replica, "set", f"{key}:after", "written while the master was dead")

        restart = [
            "bash",
            str(SCRIPTS / "restart-node.sh"),
            *("--dir", str(cluster.directory), "--port", str(master)),
        ]
        done = subprocess.run(restart, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == f"node {master}: slave"  # back as the promoted one's replica
        cluster.wait_replica_of(master, replica)
        again = subprocess.run(restart, capture_output=True, text=True, timeout=60)
        assert again.returncode == 1 and "already answers" in again.stderr

        cluster.kill(master)  # a replica now: nothing fails over
        done = subprocess.run([*restart, "--failback"], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == f"node {master}: master"
        cluster.wait_replica_of(replica, master)
        assert cluster.owner_of(key) == master
        assert cluster.cli(master, "get", key).strip() == "before"
        assert cluster.cli(master, "get", f"{key}:after").strip().startswith("written while")
    finally:
        cluster.stop()
