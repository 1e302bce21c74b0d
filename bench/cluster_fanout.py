"""Scale-out fan-out: one teacher's chat to N students spread over 2 liveclass nodes on a real
Redis Cluster, beside the embedded single node, in the same run.

    .venv/bin/python -m bench.cluster fanout --n 2000

Each (side, N) gets fresh processes: ``embedded`` is ``liveclass serve`` with its defaults (SQLite,
in-process bus); ``cluster`` is a 6-node Redis Cluster (``deploy/redis-cluster/start.sh``) and
``--nodes`` ``liveclass serve --redis-cluster`` nodes sharing one secret. Both run with
``--rate-per-s 100000 --rate-burst 100000`` (as ``bench.fanout``) so that the teacher's burst is
not refused by its per-connection limit, and ``--join-rate-per-s 100000 --join-burst 100000`` so
that the students' quick connects are not refused by the node's join rate limit. The teacher joins
node 1; student i joins node i mod nodes directly (no balancer), so every chat line reaches the
other node(s) through the room's sharded pub/sub channel. Phases as in ``bench.fanout``: warm-up,
``--rate`` messages/s for ``--latency-seconds`` (latency), then ``--bursts`` bursts of
``ceil(--burst-deliveries / N)`` messages at most ``--window`` unacknowledged (deliveries/s,
median). CPU is read per process group: the liveclass nodes, the Redis servers, the receivers; what
is left of the machine's busy time is other processes' (``other procs CPU %``).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import time
from typing import Any

from bench.cluster_deploy import CLUSTER, SIDES, Deployment, deploy
from bench.common import (
    Child,
    busy_cpu_s,
    gather_event,
    int_list,
    md_table,
    merge_counts,
    names_of,
    own_cpu_s,
    run_sides,
    stop_all,
)
from bench.fanout import LIVECLASS_ARGS as FANOUT_ARGS
from bench.fanout import Sender, cpu_of, merge_phase
from bench.wsclient import liveclass_join, open_conn

ROOM = "class"
#: ``bench.fanout``'s flags, and the join rate limit out of the way: the students connect as fast
#: as 32 connects in flight allow (over 500/s on one node), and this bench does not rejoin after
#: ``rate_limited``; admission is what ``bench.cluster join`` measures.
LIVECLASS_ARGS = (*FANOUT_ARGS, "--join-rate-per-s", "100000", "--join-burst", "100000")


class Meter:
    """CPU seconds of each process group over one phase, and the rest of the machine's."""

    def __init__(self, dep: Deployment, workers: list[Child]) -> None:
        self.dep, self.workers = dep, workers
        self.t0 = time.monotonic()
        self.nodes0, self.redis0 = dep.nodes_cpu_s(), dep.redis_cpu_s()
        self.workers0, self.busy0, self.own0 = cpu_of(workers), busy_cpu_s(), own_cpu_s()

    def read(self) -> dict[str, float]:
        """CPU seconds of the nodes, Redis and receivers, and % of a core for each and others."""
        wall = time.monotonic() - self.t0
        nodes = self.dep.nodes_cpu_s() - self.nodes0
        redis = self.dep.redis_cpu_s() - self.redis0
        clients = cpu_of(self.workers) - self.workers0
        own = own_cpu_s() - self.own0
        other = busy_cpu_s() - self.busy0 - nodes - redis - clients - own
        return {
            "nodes_cpu_s": round(nodes, 3),
            "redis_cpu_s": round(redis, 3),
            "client_cpu_s": round(clients, 3),
            "nodes_cpu_pct": round(100 * nodes / wall, 1),
            "redis_cpu_pct": round(100 * redis / wall, 1),
            "client_cpu_pct": round(100 * clients / wall, 1),
            "other_cpu_pct": round(max(0.0, 100 * other / wall), 1),
        }


def by_node(results: list[dict[str, Any]], placed: list[tuple[int, Child]]) -> dict[str, Any]:
    """Latency percentiles (ms) of the students on each node: {"node1": {...}, ...}."""
    out: dict[str, Any] = {}
    for k in sorted({node for node, _ in placed}):
        mine = [r for r, (node, _) in zip(results, placed, strict=True) if node == k]
        out[f"node{k + 1}"] = merge_phase(mine)["lat_ms"]
    return out


async def collect(
    placed: list[tuple[int, Child]], phase: str, messages: int, timeout: float
) -> list[dict[str, Any]]:
    workers = [w for _, w in placed]
    cmd = {"cmd": "collect", "phase": phase, "messages": messages, "timeout": timeout}
    return await gather_event(workers, "phase", timeout + 10, cmd)


async def one_run(side: str, n: int, args: argparse.Namespace) -> dict[str, Any]:
    print(f"cluster fanout: {side} N={n} ...", flush=True)
    out: dict[str, Any] = {"server": side, "n": n}
    sender = Sender()
    placed: list[tuple[int, Child]] = []
    async with deploy(side, args.nodes, LIVECLASS_ARGS, tag=f"cfanout-n{n}") as dep:
        out["label"] = dep.label
        try:
            teacher = dep.nodes[0]
            hello = liveclass_join(teacher.token("teacher", "teacher", ROOM), ROOM)
            sender.conn, _ = await open_conn("liveclass", teacher.port, hello, on_ack=sender.on_ack)
            students = [(f"s{i:05d}", ROOM) for i in range(n)]
            base = {
                "kind": "liveclass",
                "concurrency": 32,
                "retries": 2,
                "timeout_s": 20,
                "deadline_s": args.worker_deadline,
            }
            t_connect = time.monotonic()
            placed = await dep.start_workers(args.workers, students, base, tag=f"cfanout-{side}")
            workers = [w for _, w in placed]
            connected = await gather_event(workers, "connected", timeout=120)
            out["connect_s"] = round(time.monotonic() - t_connect, 2)
            out["connected"] = sum(c["ok"] for c in connected)
            out["connect_failures"] = merge_counts([c["failures"] for c in connected])
            out["connect_retried"] = merge_counts([c["retried"] for c in connected])
            await asyncio.sleep(1.0)  # let presence flush and the joins settle

            await sender.steady("W", args.warmup, args.rate)
            await collect(placed, "W", args.warmup, 30)

            count = round(args.rate * args.latency_seconds)
            acked0, meter = sender.acked, Meter(dep, workers)
            await sender.steady("L", count, args.rate)
            res = await collect(placed, "L", count, args.phase_timeout)
            await sender.wait_acked(acked0 + count, 10)
            out["latency"] = {
                "messages": count,
                "rate": args.rate,
                **merge_phase(res),
                "by_node": by_node(res, placed),
                "acked": sender.acked - acked0,
                **meter.read(),
            }

            m = max(1, math.ceil(args.burst_deliveries / n))
            bursts = [
                await burst_once(f"B{b}", m, sender, dep, placed, args) for b in range(args.bursts)
            ]
            med = sorted(bursts, key=lambda x: x["deliveries_per_s"])[len(bursts) // 2]
            received = max(1, sum(x["received"] for x in bursts))
            out["bursts"] = bursts
            out["burst"] = {
                **med,
                "deliveries_per_s_all": [round(x["deliveries_per_s"]) for x in bursts],
                "expected": sum(x["expected"] for x in bursts),
                "received": sum(x["received"] for x in bursts),
                **{
                    f"{what}_cpu_us_per_delivery": round(
                        1e6 * sum(x[f"{what}_cpu_s"] for x in bursts) / received, 2
                    )
                    for what in ("nodes", "redis", "client")
                },
                "frames_per_client_read": round(
                    sum(x["client_frames"] for x in bursts)
                    / max(1, sum(x["client_reads"] for x in bursts)),
                    2,
                ),
            }
            status = await gather_event(workers, "status", 10, {"cmd": "status"})
            out["still_open"] = sum(s["open"] for s in status)
            out["client_errors"] = merge_counts([s["errors"] for s in status])
            out["close_codes"] = merge_counts([s["close_codes"] for s in status])
            out["nodes_rss_mb"] = [round(s.rss() / 2**20, 1) for s in dep.nodes]
        finally:
            if sender.conn is not None:
                sender.conn.abort()
            await stop_all([w for _, w in placed])
    b, lt = out["burst"], out["latency"]
    print(
        f"  {side} N={n}: latency p50 {lt['lat_ms']['p50']:.1f} ms p99 {lt['lat_ms']['p99']:.1f} "
        f"ms, lost {lt['expected'] - lt['received']}; burst {b['deliveries_per_s']:,.0f} "
        f"deliveries/s, lost {b['expected'] - b['received']}",
        flush=True,
    )
    return out


async def burst_once(
    phase: str,
    m: int,
    sender: Sender,
    dep: Deployment,
    placed: list[tuple[int, Child]],
    args: argparse.Namespace,
) -> dict[str, Any]:
    """One burst of ``m`` pipelined messages: deliveries/s, latency, CPU per process group."""
    workers = [w for _, w in placed]
    before = await gather_event(workers, "status", 10, {"cmd": "status"})
    acked0, meter = sender.acked, Meter(dep, workers)
    node_cpu0 = [node.cpu_s() for node in dep.nodes]
    first_send, _ = await sender.burst(phase, m, args.window)
    res = await collect(placed, phase, m, args.phase_timeout)
    await sender.wait_acked(acked0 + m, 10)
    cpu = meter.read()
    node_cpu = [round(node.cpu_s() - c0, 3) for node, c0 in zip(dep.nodes, node_cpu0, strict=True)]
    after = await gather_event(workers, "status", 10, {"cmd": "status"})
    burst = merge_phase(res)
    span_s = (burst["last_ns"] - first_send) / 1e9 if burst["last_ns"] else math.nan
    accept_s = (sender.last_ack_ns - first_send) / 1e9
    await asyncio.sleep(0.5)
    return {
        "messages": m,
        "window": args.window,
        **burst,
        "by_node": by_node(res, placed),
        "acked": sender.acked - acked0,
        "span_s": round(span_s, 3),
        "deliveries_per_s": burst["received"] / span_s if span_s > 0 else 0.0,
        "accepted_msgs_per_s": round(m / accept_s, 1) if accept_s > 0 else 0.0,
        **cpu,
        "node_cpu_s": node_cpu,
        "client_frames": sum(a["frames"] for a in after) - sum(b["frames"] for b in before),
        "client_reads": sum(a["reads"] for a in after) - sum(b["reads"] for b in before),
    }


def other_load(r: dict[str, Any]) -> float:
    """The most CPU (% of one core) other processes used in a measured phase of a run."""
    if "burst" not in r:
        return 0.0
    return float(max([r["latency"]["other_cpu_pct"]] + [b["other_cpu_pct"] for b in r["bursts"]]))


def report(runs: list[dict[str, Any]]) -> str:
    rows = []
    for r in runs:
        lt, b = r.get("latency"), r.get("burst")
        if lt is None or b is None:
            rows.append([r["server"], r["n"], r.get("error", "failed")] + [""] * 16)
            continue
        nodes = lt["by_node"]
        spread = b["deliveries_per_s_all"]
        rows.append(
            [
                r.get("label", r["server"]),
                r["n"],
                r["connected"],
                lt["lat_ms"]["p50"],
                lt["lat_ms"]["p99"],
                " / ".join(f"{v['p99']:.1f}" for v in nodes.values()),
                lt["expected"] - lt["received"],
                f"{lt['nodes_cpu_pct']:.0f} / {lt['redis_cpu_pct']:.0f}",
                b["messages"],
                round(b["deliveries_per_s"]),
                f"{min(spread):,}-{max(spread):,}",
                b["accepted_msgs_per_s"],
                b["lat_ms"]["p99"],
                b["expected"] - b["received"],
                b["nodes_cpu_us_per_delivery"],
                b["redis_cpu_us_per_delivery"],
                b["client_cpu_us_per_delivery"],
                b["frames_per_client_read"],
                round(other_load(r), 1),
            ]
        )
    return md_table(
        [
            "side",
            "N",
            "joined",
            "steady p50 ms",
            "steady p99 ms",
            "steady p99 ms by node",
            "steady lost",
            "steady CPU % nodes / Redis",
            "burst msgs",
            "deliveries/s (median)",
            "deliveries/s (range)",
            "burst msgs acked/s",
            "burst p99 ms",
            "burst lost",
            "nodes CPU µs/delivery",
            "Redis CPU µs/delivery",
            "client CPU µs/delivery",
            "frames per client read",
            "other procs max CPU %",
        ],
        rows,
    )


def ratio(a: dict[str, Any], b: dict[str, Any], key: str) -> str:
    """``a[key] / b[key]`` as "1.23x" ("n/a" when b's is 0)."""
    return f"{a[key] / b[key]:.2f}x" if b[key] else "n/a"


def goals(runs: list[dict[str, Any]]) -> list[str]:
    by = {(r["server"], r["n"]): r for r in runs if "burst" in r}
    lines = []
    for (side, n), r in sorted(by.items()):
        if r["connected"] < n:
            lines.append(f"{r['label']} N={n}: only {r['connected']} students joined")
        if side != CLUSTER or ("embedded", n) not in by:
            continue
        e = by["embedded", n]
        rb, eb = r["burst"], e["burst"]
        lines.append(
            f"N={n}: steady p99 {r['latency']['lat_ms']['p99']:.1f} ms on {r['label']} vs "
            f"{e['latency']['lat_ms']['p99']:.1f} ms embedded; deliveries/s "
            f"{rb['deliveries_per_s']:,.0f} vs {eb['deliveries_per_s']:,.0f} "
            f"({rb['deliveries_per_s'] / eb['deliveries_per_s']:.2f}x, goal >= 0.9x); node CPU "
            f"{rb['nodes_cpu_us_per_delivery']:.2f} vs {eb['nodes_cpu_us_per_delivery']:.2f} "
            f"µs/delivery ({ratio(rb, eb, 'nodes_cpu_us_per_delivery')}, goal <= 1.5x); "
            f"teacher's burst acknowledged at {rb['accepted_msgs_per_s']:,.0f} vs "
            f"{eb['accepted_msgs_per_s']:,.0f} lines/s (goal >= 1,000 on the cluster); lost "
            f"{r['latency']['expected'] - r['latency']['received']} + "
            f"{rb['expected'] - rb['received']}"
        )
    return lines


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--n", type=int_list, default=[2000], help="students per run")
    p.add_argument("--sides", type=names_of(SIDES), default=list(SIDES), help="embedded,cluster")
    p.add_argument("--nodes", type=int, default=2, help="liveclass nodes on the cluster side")
    p.add_argument("--workers", type=int, default=4, help="receiver processes (split over nodes)")
    p.add_argument("--rate", type=float, default=10.0, help="latency phase: messages per second")
    p.add_argument("--latency-seconds", type=float, default=5.0, help="latency phase length")
    p.add_argument("--warmup", type=int, default=5, help="warm-up messages (not reported)")
    p.add_argument("--burst-deliveries", type=int, default=100_000, help="per burst, about")
    p.add_argument("--bursts", type=int, default=3, help="bursts per run (median reported)")
    p.add_argument("--window", type=int, default=16, help="burst: most unacknowledged messages")
    p.add_argument("--phase-timeout", type=float, default=60.0, help="wait for deliveries (s)")
    p.add_argument("--noise-pct", type=float, default=25.0, help="re-run above this other CPU %%")
    p.add_argument("--noisy-retries", type=int, default=1, help="re-runs of a noisy run")
    p.add_argument("--seed", type=int, default=1, help="shuffles the side order per N")
    p.add_argument("--worker-deadline", type=float, default=400.0, help="workers exit after (s)")
    p.add_argument("--max-seconds", type=float, default=900.0, help="hard limit for the run")


async def body(args: argparse.Namespace, runs: list[dict[str, Any]]) -> None:
    runs.extend(
        await run_sides(
            args.n,
            args.sides,
            lambda side, n: one_run(side, n, args),
            other_load,
            size_key="n",
            seed=args.seed,
            noise_pct=args.noise_pct,
            noisy_retries=args.noisy_retries,
        )
    )
    runs.sort(key=lambda r: (r["n"], SIDES.index(r["server"])))
