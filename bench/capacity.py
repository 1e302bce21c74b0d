"""The capacity ladder (issue 14): the largest lecture a deployment holds within the SLO.

    .venv/bin/python -m bench.capacity                      # both sides, 500..3,000 users
    .venv/bin/python -m bench.capacity --sides embedded --users 500,1000,2000 --hold-s 30
    .venv/bin/python -m bench.capacity --processes 2        # locust master + 2 workers
    .venv/bin/python -m bench.capacity --quick              # one step of 100 users for 8 s

A side is ``embedded`` (one ``liveclass serve --no-media`` node) or ``cluster`` (``--nodes`` nodes
on a fresh local 6-node Redis Cluster behind the shipped HAProxy config, ``balance source``, each
simulated user on its own 127.a.b.c source address). Each step starts the side afresh, runs the
locust suite headless (``loadtest/locustfile.py``, the lecture mix, one room) with the SLO gate
(fan-out p95 <= 1.5 s, ack p99 <= 1 s, no failed join) for the ramp plus ``--hold-s`` seconds,
and records the users joined, fan-out percentiles, ack p99, delivery ratio, receipts/s, the
server's frames, and the CPU of every process involved (locust's processes, each node, Redis,
HAProxy) as a share of one core over the hold. A side's ladder stops at the first step that
misses a target. A locust process at or above ``HARNESS_SHARE`` of a core makes the step
harness-bound: the figure is the load generator's, not the server's.

Everything runs on 127.0.0.0/8; every process started is stopped at the end of its step (and on
failure, timeout or Ctrl-C). Results: ``bench/results/capacity-*.json``; a markdown table is
printed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from bench.cluster_deploy import CLUSTER, EMBEDDED, SIDES, Deployment, deploy, redis_server_version
from bench.common import (
    REPO,
    Child,
    busy_cpu_s,
    environment,
    finish,
    int_list,
    log_dir,
    md_table,
    names_of,
    pid_cpu_s,
    run,
    wait_quiet,
)

LOCUSTFILE = REPO / "loadtest" / "locustfile.py"
#: The targets of issue 14's reference run.
FANOUT_P95_MS = 1500.0
ACK_P99_MS = 1000.0
JOIN_FAILURES = 0
#: A locust process using this share of one core (or more) over the hold limits the figure.
HARNESS_SHARE = 0.9
#: locust's exit code when the SLO gate missed a target (loadtest/locustfile.py).
GATE_EXIT_CODE = 3


# -- pure helpers (tests/unit/test_capacity.py) ------------------------------------------------


def ramp_seconds(users: int, spawn_rate: float) -> float:
    """Seconds locust takes to start ``users`` at ``spawn_rate`` users a second."""
    return users / spawn_rate if spawn_rate > 0 else 0.0


def share(cpu_s: float, wall_s: float) -> float:
    """CPU seconds as a share of one core over ``wall_s`` (1.0 = one core busy throughout)."""
    return cpu_s / wall_s if wall_s > 0 else 0.0


def misses(summary: dict[str, Any] | None, users: int) -> list[str]:
    """The targets a step missed, from locust's ``--summary-json`` (empty: the step held).

    No summary (locust crashed or was killed) is a miss; so is a step where fewer than ``users``
    joined, a failed join, a fan-out p95 or an ack p99 over its target or without a sample.
    """
    if not summary:
        return ["no summary"]
    out: list[str] = []
    fanout = (summary.get("fanout_ms") or {}).get("p95")
    if fanout is None or fanout > FANOUT_P95_MS:
        out.append(f"fan-out p95 {fanout} ms > {FANOUT_P95_MS:g}")
    ack = summary.get("ack_p99_ms")
    if ack is None or ack > ACK_P99_MS:
        out.append(f"ack p99 {ack} ms > {ACK_P99_MS:g}")
    failures = int(summary.get("join_failures", 0))
    if failures > JOIN_FAILURES:
        out.append(f"{failures} joins failed")
    joined = int(summary.get("joins", 0))
    if joined < users:
        out.append(f"{joined} of {users} joined")
    return out


def largest_held(steps: Sequence[dict[str, Any]]) -> int | None:
    """The most users of a step that held, counting only steps before the first miss."""
    best: int | None = None
    for step in steps:
        if not step.get("held"):
            break
        best = max(best or 0, int(step["users"]))
    return best


def hold_window_cpu(
    samples: Sequence[tuple[float, dict[str, float]]], start: float, end: float
) -> tuple[dict[str, float], float]:
    """What each cumulative counter grew by between the samples nearest ``start`` and ``end``.

    ``samples`` are (monotonic time, {label: cumulative value}) in time order: CPU seconds per
    process, or the nodes' /metrics counters. Returns ({label: growth in the window}, the
    window's length in seconds); a label absent from the first sample counts from 0 (a process
    started within the window).
    """
    if len(samples) < 2:
        return {}, 0.0
    first = min(samples, key=lambda s: abs(s[0] - start))
    last = min(samples, key=lambda s: abs(s[0] - end))
    if last[0] <= first[0]:
        first, last = samples[0], samples[-1]
    inside = [s for s in samples if first[0] <= s[0] <= last[0]]
    used: dict[str, float] = {}
    for _, values in inside:  # a process gone before the window's end: its last value
        for label, value in values.items():
            used[label] = value - first[1].get(label, 0.0)
    return used, last[0] - first[0]


def step_row(step: dict[str, Any]) -> list[Any]:
    """One markdown row of a step."""
    s = step.get("summary") or {}
    f = s.get("fanout_ms") or {}
    hold = step.get("hold_share", {})
    loc = [v for k, v in hold.items() if k.startswith("locust")]
    nodes = [v for k, v in hold.items() if k.startswith("node")]
    verdict = "held" if step.get("held") else "missed: " + "; ".join(step.get("misses", []))
    if step.get("harness_bound"):
        verdict += " (harness-bound)"
    return [
        step["users"],
        s.get("joins", 0),
        s.get("join_failures", "n/a"),
        _num(f.get("p50")),
        _num(f.get("p95")),
        _num(f.get("p99")),
        _num(s.get("ack_p99_ms")),
        _num((s.get("delivery") or {}).get("ratio"), 4),
        round(step.get("receipts_per_s", 0.0)),
        round(
            step.get("hold_rates", {}).get(
                "liveclass_frames_sent_total", step.get("frames_sent_per_s", 0.0)
            )
        ),
        " + ".join(f"{100 * v:.0f}%" for v in loc) or "n/a",
        " + ".join(f"{100 * v:.0f}%" for v in nodes) or "n/a",
        f"{100 * hold['redis']:.0f}%" if "redis" in hold else "-",
        f"{100 * hold['haproxy']:.0f}%" if "haproxy" in hold else "-",
        f"{100 * step['other_share']:.0f}%" if "other_share" in step else "n/a",
        verdict,
    ]


def _num(v: Any, digits: int = 1) -> str:
    return "n/a" if v is None else f"{float(v):,.{digits}f}"


HEADERS = [
    "users",
    "joined",
    "join fail",
    "fan-out p50 ms",
    "p95",
    "p99",
    "ack p99 ms",
    "delivery",
    "receipts/s",
    "frames sent/s (hold)",
    "locust CPU",
    "node CPU",
    "Redis CPU",
    "HAProxy CPU",
    "other procs CPU",
    "verdict",
]


def report(runs: Sequence[dict[str, Any]]) -> str:
    parts = []
    for ladder in runs:
        title = f"### {ladder['side']} ({ladder['label']}), locust processes: {ladder['processes']}"
        rows = [step_row(s) for s in ladder["steps"]]
        best = largest_held(ladder["steps"])
        parts.append(
            f"{title}\n\n{md_table(HEADERS, rows)}\n\nlargest lecture held: "
            f"{best if best is not None else 'none'} users"
            + (
                " (harness-bound: a locust process saturated a core)"
                if ladder.get("harness_bound")
                else ""
            )
            + f"; load {ladder['load_before']} before, {ladder.get('load_after', 'n/a')} after"
        )
    return "\n\n".join(parts) + "\n\nCPU: share of one core over the hold (after the ramp)."


# -- one step ------------------------------------------------------------------------------------


@dataclass
class Balancer:
    """The shipped HAProxy config in front of the nodes (``tests/haproxy.py`` renders it)."""

    directory: Path
    backends: list[tuple[str, int]]
    proxy: Any = field(default=None)

    async def start(self) -> Balancer:
        from tests.haproxy import HAProxy

        self.proxy = HAProxy(self.directory, self.backends)
        await asyncio.to_thread(self.proxy.start)
        return self

    @property
    def url(self) -> str:
        return str(self.proxy.url)

    @property
    def pid(self) -> int:
        return int(self.proxy.proc.pid)

    async def stop(self) -> None:
        if self.proxy is not None:
            await asyncio.to_thread(self.proxy.stop)
        shutil.rmtree(self.directory, ignore_errors=True)


@contextlib.asynccontextmanager
async def side_up(
    side: str, nodes: int, tag: str
) -> AsyncIterator[tuple[Deployment, Balancer | None]]:
    async with deploy(side, nodes, ["--no-media"], tag=tag) as dep:
        if side == EMBEDDED:
            yield dep, None
            return
        balancer = Balancer(
            Path(tempfile.mkdtemp(prefix="lc-haproxy-")), [("127.0.0.1", n.port) for n in dep.nodes]
        )
        try:
            await balancer.start()
            yield dep, balancer
        finally:
            await balancer.stop()


def _tree_cpu(pid: int) -> dict[str, float]:
    """CPU seconds of locust's process and its children (workers), labelled locust0..N."""
    out: dict[str, float] = {}
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return out
    for proc in procs:
        try:
            t = proc.cpu_times()
        except psutil.Error:
            continue
        out[f"locust{proc.pid}"] = float(t.user + t.system)
    return out


def _frames(dep: Deployment) -> dict[str, float]:
    try:
        m = dep.metrics()
    except OSError:
        return {}
    names = (
        "liveclass_frames_sent_total",
        "liveclass_frames_received_total",
        "liveclass_events_appended_total",
        "liveclass_joins_total",
        "liveclass_slow_consumers_total",
    )
    return {n: sum(v for k, v in m.items() if k.split("{")[0] == n) for n in names}


async def one_step(args: argparse.Namespace, side: str, users: int, index: int) -> dict[str, Any]:
    tag = f"capacity-{side}-{users}"
    rate = args.spawn_rate
    ramp = ramp_seconds(users, rate)
    run_s = int(ramp + args.hold_s + 0.999)
    out_dir = Path(tempfile.mkdtemp(prefix="lc-capacity-"))
    step: dict[str, Any] = {"users": users, "spawn_rate": rate, "run_s": run_s}
    try:
        async with side_up(side, args.nodes, tag) as (dep, balancer):
            host = balancer.url if balancer is not None else f"http://127.0.0.1:{dep.nodes[0].port}"
            cmd = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--host", host]
            cmd += ["--headless", "--only-summary", "-u", str(users), "-r", f"{rate:g}"]
            cmd += ["-t", f"{run_s}s", "--csv", str(out_dir / "run")]
            cmd += ["--summary-json", str(out_dir / "summary.json"), "--rooms", "1"]
            cmd += ["--room-prefix", f"cap{index}"]
            cmd += ["--slo-fanout-p95-ms", f"{FANOUT_P95_MS:g}", "--slo-ack-p99-ms"]
            cmd += [f"{ACK_P99_MS:g}", "--slo-join-failures", str(JOIN_FAILURES)]
            if args.processes != 1:
                cmd += ["--processes", str(args.processes)]
            if side == CLUSTER:
                cmd += ["--source-addresses", "loopback"]
            cmd += args.locust_arg
            step["command"] = " ".join(["locust", *cmd[3:]]).replace(str(REPO) + "/", "")
            env = {**os.environ, "LIVECLASS_SECRETS": f"bench:{dep.nodes[0].secret}"}
            step["quiet"] = await wait_quiet(args.quiet_wait, extra_pids=dep.extra_pids())
            step["load_before"] = [round(x, 2) for x in os.getloadavg()]
            frames0 = _frames(dep)

            def sample() -> dict[str, float]:
                cpu = _tree_cpu(child.pid)
                for k, node in enumerate(dep.nodes, 1):
                    cpu[f"node{k}"] = node.cpu_s()
                if dep.cluster is not None:
                    cpu["redis"] = dep.redis_cpu_s()
                if balancer is not None:
                    cpu["haproxy"] = pid_cpu_s(balancer.pid)
                cpu["machine"] = busy_cpu_s()
                return cpu

            usage0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.monotonic()
            child = await Child.spawn(
                f"locust-{tag}",
                cmd,
                env=env,
                log=log_dir() / f"{tag}-locust.log",
                stdout_pipe=False,
            )
            samples: list[tuple[float, dict[str, float]]] = []
            counts: list[tuple[float, dict[str, float]]] = []  # the nodes' /metrics counters
            try:
                while child.proc.returncode is None:
                    samples.append((time.monotonic(), sample()))
                    counts.append((time.monotonic(), await asyncio.to_thread(_frames, dep)))
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(child.proc.wait(), 1.0)
                    if time.monotonic() - t0 > run_s + args.grace_s:
                        step["error"] = (
                            f"locust still running {args.grace_s:g} s after its run time"
                        )
                        break
            finally:
                await child.stop(grace=10.0)
            wall = time.monotonic() - t0
            usage1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            frames1 = _frames(dep)
            step["locust_exit"] = child.proc.returncode
            step["wall_s"] = round(wall, 1)
            step["locust_cpu_s"] = round(
                usage1.ru_utime + usage1.ru_stime - usage0.ru_utime - usage0.ru_stime, 2
            )
            last = samples[-1][1] if samples else {}
            first = samples[0][1] if samples else {}
            step["cpu_s"] = {
                k: round(v - first.get(k, 0.0), 2)
                for k, v in last.items()
                if not k.startswith("locust") and k != "machine"
            }
            # the hold: the end of the ramp (locust starts 1-2 s after spawn) to about the end
            hold_start = t0 + 2.0 + ramp + 2.0
            hold_end = t0 + run_s
            used, window = hold_window_cpu(samples, hold_start, hold_end)
            step["hold_s"] = round(window, 1)
            step["hold_share"] = {k: round(share(v, window), 3) for k, v in used.items()}
            # other people's work on a shared machine: all cores' busy time less ours
            machine = step["hold_share"].pop("machine", 0.0)
            step["other_share"] = round(max(0.0, machine - sum(step["hold_share"].values())), 3)
            step["harness_bound"] = any(
                v >= HARNESS_SHARE for k, v in step["hold_share"].items() if k.startswith("locust")
            )
            step["frames"] = {k: frames1.get(k, 0.0) - frames0.get(k, 0.0) for k in frames1}
            held, span = hold_window_cpu(counts, hold_start, hold_end)
            step["hold_rates"] = {k: round(share(v, span), 1) for k, v in held.items()}
            if side == CLUSTER:
                step["joins_per_node"] = [
                    n.metrics().get("liveclass_joins_total", 0.0) for n in dep.nodes
                ]
            step["load_after"] = [round(x, 2) for x in os.getloadavg()]
    except Exception as exc:
        step["error"] = repr(exc)
    summary_path = out_dir / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else None
    if summary is not None:
        summary["delivery"].pop("incomplete", None)
    step["summary"] = summary
    count = (summary or {}).get("fanout_ms", {}).get("count", 0)
    step["receipts_per_s"] = count / run_s
    step["frames_sent_per_s"] = (
        step.get("frames", {}).get("liveclass_frames_sent_total", 0.0) / run_s
    )
    step["misses"] = misses(summary, users) + ([step["error"]] if "error" in step else [])
    step["held"] = not step["misses"]
    shutil.rmtree(out_dir, ignore_errors=True)
    return step


async def ladder(args: argparse.Namespace, side: str, runs: list[dict[str, Any]]) -> None:
    entry: dict[str, Any] = {
        "side": side,
        "label": EMBEDDED if side == EMBEDDED else f"{CLUSTER}, {args.nodes} nodes, HAProxy",
        "processes": args.processes,
        "steps": [],
        "load_before": [round(x, 2) for x in os.getloadavg()],
    }
    runs.append(entry)
    for index, users in enumerate(args.users):
        print(f"capacity: {side} {users} users ...", flush=True)
        step = await one_step(args, side, users, index)
        entry["steps"].append(step)
        s = step.get("summary") or {}
        print(
            f"  joined {s.get('joins')} fan-out p95 {(s.get('fanout_ms') or {}).get('p95')} ms"
            f" ack p99 {s.get('ack_p99_ms')} ms; CPU over the hold {step.get('hold_share')};"
            f" {'held' if step['held'] else 'missed: ' + '; '.join(step['misses'])}",
            flush=True,
        )
        if not step["held"] and not args.keep_going:
            break
    entry["largest_held"] = largest_held(entry["steps"])
    entry["harness_bound"] = any(s.get("harness_bound") for s in entry["steps"])
    entry["load_after"] = [round(x, 2) for x in os.getloadavg()]


# -- command line ----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--sides", type=names_of(SIDES), default=list(SIDES))
    p.add_argument("--users", type=int_list, default=[500, 1000, 1500, 2000, 3000])
    p.add_argument("--hold-s", type=float, default=30.0, help="seconds at full count")
    p.add_argument("--spawn-rate", type=float, default=100.0, help="users started per second")
    p.add_argument("--nodes", type=int, default=2, help="cluster side: liveclass nodes")
    p.add_argument("--processes", type=int, default=1, help="locust processes (-1: one per core)")
    p.add_argument(
        "--locust-arg",
        action="append",
        default=[],
        help="one more locust argument (repeat), e.g. --locust-arg=--lecture-every-s=0.5",
    )
    p.add_argument("--keep-going", action="store_true", help="run every step even after a miss")
    p.add_argument("--quiet-wait", type=float, default=20.0, help="max wait for a quiet machine")
    p.add_argument("--grace-s", type=float, default=60.0, help="locust's time past its run time")
    p.add_argument("--max-seconds", type=float, default=3600.0)
    p.add_argument("--quick", action="store_true", help="one step of 100 users for 8 s")
    args = p.parse_args(argv)
    if args.quick:
        args.users, args.hold_s, args.quiet_wait = [100], 8.0, 0.0
    return args


def main() -> None:
    args = parse_args()
    env = environment()
    env["versions"]["redis-server"] = redis_server_version()
    env["versions"]["locust"] = importlib.metadata.version("locust")
    env["versions"]["haproxy"] = shutil.which("haproxy") or "not installed"
    runs: list[dict[str, Any]] = []
    started = time.monotonic()

    async def body() -> None:
        for side in args.sides:
            await ladder(args, side, runs)

    try:
        run(body, args.max_seconds)
    finally:
        goals = [
            f"{r['side']}: largest lecture held {r.get('largest_held')} users"
            + (" (harness-bound)" if r.get("harness_bound") else "")
            for r in runs
        ]
        finish("capacity", args, {"env": env, "runs": runs}, goals, report(runs), started)


if __name__ == "__main__":
    main()
