"""Scale-out join storm: N students join one room over 2 liveclass nodes on a real Redis Cluster
within ``--window`` seconds, beside the embedded single node, in the same run.

    .venv/bin/python -m bench.cluster join --n 2000 --window 10

Both sides run ``liveclass serve`` with its default flags (``cluster``: plus ``--redis-cluster``
and ``--node-id``); the embedded side is ``bench.join_storm``'s run as it is. The teacher joins node
1 first; the students' start times are drawn uniformly over the window (``--seed``) and student i
joins node i mod nodes directly. Join latency = connect start -> welcome.

Redis commands per join: ``INFO commandstats`` ``calls`` summed over all 6 cluster nodes, read
before the first join and after the last one plus two presence intervals; the commands of the idle
deployment over the same length of time (measured over ``--idle-seconds`` just before the storm)
are subtracted (``net``), and the total is also given without that subtraction (``gross``).
Calls count what scripts run inside (the XADD of an append script) and, on replicas, the writes
they apply from their masters; masters alone are given too.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from typing import Any

from bench import join_storm
from bench.cluster_deploy import CLUSTER, SIDES, deploy
from bench.common import (
    busy_cpu_s,
    child_cpu_s,
    gather_event,
    int_list,
    md_table,
    merge_counts,
    names_of,
    own_cpu_s,
    run_sides,
    stop_all,
    summarize,
)
from bench.wsclient import BenchConn, liveclass_join, open_conn

ROOM = "class"
Stats = dict[int, dict[str, int]]


def diff(after: Stats, before: Stats) -> Stats:
    return {
        port: {k: v - before.get(port, {}).get(k, 0) for k, v in calls.items()}
        for port, calls in after.items()
    }


def by_command(stats: Stats, ports: list[int] | None = None) -> dict[str, int]:
    """Calls per command summed over ``ports`` (default: every node)."""
    return merge_counts([c for p, c in stats.items() if ports is None or p in ports])


async def one_run(
    side: str, n: int, args: argparse.Namespace, rng: random.Random
) -> dict[str, Any]:
    if side != CLUSTER:
        embedded = await join_storm.one_run(n, args, rng)
        return {"server": side, "label": side, **embedded}
    print(f"cluster join: {side} N={n} over {args.window:g} s ...", flush=True)
    out: dict[str, Any] = {"server": side, "n": n, "window_s": args.window}
    teacher: BenchConn | None = None
    workers = []
    async with deploy(side, args.nodes, tag=f"cjoin-n{n}") as dep:
        cluster = dep.cluster
        assert cluster is not None
        out["label"] = dep.label
        try:
            hello = liveclass_join(dep.nodes[0].token("teacher", "teacher", ROOM), ROOM)
            teacher, _ = await open_conn("liveclass", dep.nodes[0].port, hello)
            await asyncio.sleep(2 * args.presence_interval_ms / 1000 + 0.2)
            masters = [p for p, role in (await cluster.roles()).items() if role == "master"]

            # The idle deployment's own commands (heartbeats, slot-map refreshes), per second.
            idle0, t_idle = await cluster.commandstats(), time.monotonic()
            await asyncio.sleep(args.idle_seconds)
            s0, t0 = await cluster.commandstats(), time.monotonic()
            idle = by_command(diff(s0, idle0))
            idle_s = t0 - t_idle

            m0 = await asyncio.to_thread(dep.metrics)
            cpu0, redis0 = dep.nodes_cpu_s(), dep.redis_cpu_s()
            busy0, own0 = busy_cpu_s(), own_cpu_s()
            students = [(f"s{i:05d}", ROOM) for i in range(n)]
            schedule = [rng.uniform(0, args.window) for _ in range(n)]
            start_ns = time.monotonic_ns() + int(args.lead * 1e9)
            base = {
                "kind": "liveclass",
                "concurrency": n,
                "start_ns": start_ns,
                "deadline_s": args.window + args.lead + 120,
            }
            placed = await dep.start_workers(
                args.workers, students, base, schedule=schedule, tag=f"cjoin-{n}"
            )
            workers = [w for _, w in placed]
            connected = await gather_event(
                workers, "connected", timeout=args.window + args.lead + 90
            )
            storm_s = (time.monotonic_ns() - start_ns) / 1e9
            await asyncio.sleep(2 * args.presence_interval_ms / 1000 + 0.5)
            s1, t1 = await cluster.commandstats(), time.monotonic()
            m1 = await asyncio.to_thread(dep.metrics)
            cpu, redis_cpu = dep.nodes_cpu_s() - cpu0, dep.redis_cpu_s() - redis0
            wcpu = sum(child_cpu_s(w) for w in workers)
            other = busy_cpu_s() - busy0 - cpu - redis_cpu - wcpu - (own_cpu_s() - own0)
            status = await gather_event(workers, "status", 10, {"cmd": "status"})
            join_us = [u for c in connected for u in c["join_us"]]
            by_node_ms = {}
            for k in range(len(dep.nodes)):
                mine = [c for c, (node, _) in zip(connected, placed, strict=True) if node == k]
                lat = [u / 1000 for c in mine for u in c["join_us"]]
                by_node_ms[f"node{k + 1}"] = summarize(lat)
            joins = int(m1.get("liveclass_joins_total", 0) - m0.get("liveclass_joins_total", 0))
            storm = diff(s1, s0)
            gross = by_command(storm)
            scale = (t1 - t0) / idle_s
            net = {k: v - idle.get(k, 0) * scale for k, v in gross.items()}
            per_join = max(1, joins)
            top = sorted(net.items(), key=lambda kv: -kv[1])[: args.top]
            out.update(
                {
                    "admitted": sum(c["ok"] for c in connected),
                    "failed": sum(c["failed"] for c in connected),
                    "failures": merge_counts([c["failures"] for c in connected]),
                    "server_joins": joins,
                    "server_rejections": {
                        k: v - m0.get(k, 0)
                        for k, v in m1.items()
                        if k.startswith("liveclass_join_rejections_total") and v - m0.get(k, 0)
                    },
                    "still_open": sum(s["open"] for s in status),
                    "storm_s": round(storm_s, 2),
                    "join_ms": summarize([u / 1000 for u in join_us]),
                    "join_ms_by_node": by_node_ms,
                    "frames_sent_metric": int(
                        m1.get("liveclass_frames_sent_total", 0)
                        - m0.get("liveclass_frames_sent_total", 0)
                    ),
                    "redis_interval_s": round(t1 - t0, 2),
                    "redis_idle_per_s": round(sum(idle.values()) / idle_s, 1),
                    "redis_idle_by_command_per_s": {
                        k: round(v / idle_s, 1) for k, v in idle.items() if v
                    },
                    "redis_calls_gross": sum(gross.values()),
                    "redis_calls_net": round(sum(net.values())),
                    "redis_calls_masters": sum(by_command(storm, masters).values()),
                    "redis_per_join_gross": round(sum(gross.values()) / per_join, 2),
                    "redis_per_join_net": round(sum(net.values()) / per_join, 2),
                    "redis_per_join_masters": round(
                        sum(by_command(storm, masters).values()) / per_join, 2
                    ),
                    "redis_per_join_by_command": {k: round(v / per_join, 2) for k, v in top},
                    "redis_calls_by_command": {k: v for k, v in sorted(gross.items()) if v},
                    "redis_calls_by_command_masters": {
                        k: v for k, v in sorted(by_command(storm, masters).items()) if v
                    },
                    "redis_calls_by_command_replicas": {
                        k: v
                        for k, v in sorted(
                            by_command(storm, [p for p in storm if p not in masters]).items()
                        )
                        if v
                    },
                    "server_cpu_s": round(cpu, 2),
                    "redis_cpu_s": round(redis_cpu, 2),
                    "client_cpu_s": round(wcpu, 2),
                    "other_cpu_pct": round(max(0.0, 100 * other / (t1 - t0)), 1),
                }
            )
        finally:
            if teacher is not None:
                teacher.abort()
            await stop_all(workers)
    print(
        f"  {side} N={n}: admitted {out['admitted']}/{n}, join p50 {out['join_ms']['p50']:.1f} ms "
        f"p99 {out['join_ms']['p99']:.1f} ms; Redis calls per join {out['redis_per_join_net']} "
        f"net, {out['redis_per_join_gross']} gross",
        flush=True,
    )
    return out


def report(runs: list[dict[str, Any]]) -> str:
    rows = []
    for r in runs:
        if "join_ms" not in r:
            rows.append([r.get("server"), r.get("n"), r.get("error", "failed")] + [""] * 11)
            continue
        cmds = r.get("redis_per_join_by_command", {})
        rows.append(
            [
                r.get("label", r["server"]),
                r["n"],
                f"{r['admitted']:,}/{r['n']:,}",
                r["storm_s"],
                r["join_ms"]["p50"],
                r["join_ms"]["p99"],
                r["join_ms"]["max"],
                r.get("redis_per_join_net", "-"),
                r.get("redis_per_join_gross", "-"),
                r.get("redis_per_join_masters", "-"),
                ", ".join(f"{k} {v}" for k, v in cmds.items()) or "-",
                f"{r['server_cpu_s']} / {r.get('redis_cpu_s', 0)}",
                r["other_cpu_pct"],
            ]
        )
    return md_table(
        [
            "side",
            "N",
            "admitted",
            "last welcome at s",
            "join p50 ms",
            "join p99 ms",
            "join max ms",
            "Redis calls per join (net of idle)",
            "gross",
            "masters only",
            "top commands per join (net)",
            "CPU s nodes / Redis",
            "other procs CPU %",
        ],
        rows,
    )


def goals(runs: list[dict[str, Any]]) -> list[str]:
    lines = []
    for r in runs:
        if "join_ms" in r:
            ok = r["admitted"] == r["n"] and r["storm_s"] <= r["window_s"] + 5
            lines.append(
                f"{r.get('label', r['server'])} N={r['n']}: {r['admitted']}/{r['n']} admitted, "
                f"join p99 {r['join_ms']['p99']:.1f} ms: "
                f"{'all admitted' if ok else 'NOT all admitted in time'}"
                + (
                    f"; {r['redis_per_join_net']} Redis calls per join"
                    if "redis_per_join_net" in r
                    else ""
                )
            )
    return lines


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--n", type=int_list, default=[2000], help="students per run")
    p.add_argument("--sides", type=names_of(SIDES), default=list(SIDES), help="embedded,cluster")
    p.add_argument("--nodes", type=int, default=2, help="liveclass nodes on the cluster side")
    p.add_argument("--window", type=float, default=10.0, help="joins spread over (s)")
    p.add_argument("--workers", type=int, default=4, help="client processes (split over nodes)")
    p.add_argument("--lead", type=float, default=3.0, help="time for workers to start (s)")
    p.add_argument("--idle-seconds", type=float, default=3.0, help="idle Redis calls measured (s)")
    p.add_argument("--top", type=int, default=5, help="commands listed per join")
    p.add_argument(
        "--presence-interval-ms", type=int, default=250, help="the server's default (to wait)"
    )
    p.add_argument("--seed", type=int, default=1, help="join schedule and side order seed")
    p.add_argument("--noise-pct", type=float, default=25.0, help="re-run above this other CPU %%")
    p.add_argument("--noisy-retries", type=int, default=1, help="re-runs of a noisy run")
    p.add_argument("--max-seconds", type=float, default=600.0, help="hard limit for the run")


async def body(args: argparse.Namespace, runs: list[dict[str, Any]]) -> None:
    runs.extend(
        await run_sides(
            args.n,
            args.sides,
            # the same join schedule for both sides
            lambda side, n: one_run(side, n, args, random.Random(f"{args.seed}-{n}")),
            lambda r: float(r.get("other_cpu_pct", 0.0)),
            size_key="n",
            seed=args.seed,
            noise_pct=args.noise_pct,
            noisy_retries=args.noisy_retries,
        )
    )
    runs.sort(key=lambda r: (r.get("n", 0), SIDES.index(r["server"])))
