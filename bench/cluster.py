"""Scale-out benchmarks (issue 4): liveclass nodes on a real local Redis Cluster.

    .venv/bin/python -m bench.cluster fanout    # 2,000 students over 2 nodes vs the embedded node
    .venv/bin/python -m bench.cluster join      # a 2,000-student join storm over 2 nodes in 10 s
    .venv/bin/python -m bench.cluster failover  # SIGKILL of the room's Redis master mid-class

Everything runs on 127.0.0.1: the Redis Cluster (3 masters, 3 replicas, started and stopped with
``deploy/redis-cluster/``), the ``liveclass serve`` processes, the receiver workers and the
sender. Every run is bounded (``--max-seconds``, phase timeouts, worker deadlines) and stops every
process it started, Redis included, also on failure or Ctrl-C. Results go to
``bench/results/cluster_<bench>-*.json``; a markdown table is printed at the end.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import time
from types import ModuleType
from typing import Any

from bench import cluster_failover, cluster_fanout, cluster_join
from bench.cluster_deploy import redis_server_version
from bench.common import environment, finish, run

BENCHES: dict[str, ModuleType] = {
    "fanout": cluster_fanout,
    "join": cluster_join,
    "failover": cluster_failover,
}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="bench", required=True)
    for name, module in BENCHES.items():
        doc = module.__doc__ or ""
        sp = sub.add_parser(
            name,
            help=doc.splitlines()[0],
            description=doc,
            formatter_class=argparse.RawTextHelpFormatter,
        )
        module.add_arguments(sp)
    return p.parse_args()


def main() -> None:
    args = parse_args()
    module = BENCHES[args.bench]
    env = environment()
    env["versions"]["redis-server"] = redis_server_version()
    env["versions"]["redis-py"] = importlib.metadata.version("redis")
    runs: list[dict[str, Any]] = []
    started = time.monotonic()
    try:
        run(lambda: module.body(args, runs), args.max_seconds)
    finally:
        data = {"env": env, "runs": runs}
        finish(
            f"cluster_{args.bench}", args, data, module.goals(runs), module.report(runs), started
        )


if __name__ == "__main__":
    main()
