"""Whiteboard relay: real Yjs clients on one board, against liveclass and two y-websocket servers.

    .venv/bin/python -m bench.whiteboard --clients 2,50 --servers liveclass,node,pycrdt

The servers, each a fresh process on a free 127.0.0.1 port for every (server, clients) run:

- ``liveclass``: ``liveclass serve`` (defaults; an update is durable in SQLite before it is
  relayed), clients at ``/whiteboard/<room>/<board>?token=<jwt>``, one token per client
  (client 0 a teacher, the others students);
- ``node``: the reference ``@y/websocket-server`` 0.1.1 (``src/server.js``, in memory);
- ``pycrdt``: pycrdt-websocket 0.16.5 as shipped (``bench/peers/pycrdt_ws/server.py``, in memory).

The clients: ``bench/peers/yjs_node/clients.mjs`` (yjs 13.6.33, y-websocket 3.1.0 providers over
``ws``; pinned in its package-lock.json). The first ``--writers`` clients write, taking turns; a
write is one shape record pushed to the board's ``records`` array (a YKeyValue entry, an update
of about 50 bytes) carrying the writer's CLOCK_MONOTONIC; every other client records the latency
when its observer sees the record. The clients run in ``--client-procs`` Node processes (2; one
when the board has only the writers): with one process, 50 clients kept it at a full core while
the Node and liveclass servers used 15-40% of the other, so the saturated rate measured the
clients' single thread, not the server, and a listener's latency included the dozens of clients
ahead of it in the same thread. The main process hosts the writers and counts every delivery
(helpers forward theirs over IPC), so the closed loop below sees every listener. Latency is
reported over every delivery, and per write to its ``first`` and to its last listener (``all``).

Every client has an awareness state (a whiteboard user's name, colour, tool), sent on connect and
renewed every 15 s as y-websocket does; y-websocket clients also re-send every awareness change
they receive, so a server that relays those copies (pycrdt-websocket) relays N^2 frames per
renewal. ``--no-awareness`` (a diagnostic) leaves presence out and measures the updates alone.

Phases per run:

0. the joins: every client connects at once and syncs; then the run waits until the server
   uses under ``--settle-pct`` of a core (at most ``--settle-max``): how long the joins' sync
   and awareness kept it busy, and its CPU, are reported;
1. warm-up: ``--warmup`` writes at ``--rate`` (not reported), then ``--idle-seconds`` without
   writes: the server's CPU with the clients connected and idle;
2. steady: ``--rate`` writes per second for ``--latency-seconds`` (writers take turns): latency
   p50/p99 over every delivery, server CPU per write;
3. saturation, ``--sat-runs`` times: a closed loop for ``--sat-seconds``: at most ``--window``
   writes not yet observed by every listener; each completed write releases the next.
   Updates/s = writes completed / (first write to the last completion); the median run is
   reported, with the server's CPU per write over all runs.

Server CPU is the server process's user + system time (psutil, every thread) over a phase,
divided by its writes. Other processes' CPU during each phase is measured as in ``fanout`` and a
noisy run is repeated once. Results: bench/results/whiteboard-*.json and markdown tables.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import psutil

from bench.common import (
    BENCH,
    Child,
    Server,
    busy_cpu_s,
    ensure_node_peer,
    environment,
    finish,
    free_port,
    int_list,
    log_dir,
    md_table,
    names_of,
    node_pkg_version,
    own_cpu_s,
    run,
    run_sides,
    start_server,
    summarize,
)

SERVERS = ("liveclass", "node", "pycrdt")
YJS_PEER = BENCH / "peers" / "yjs_node"
PYCRDT_PEER = BENCH / "peers" / "pycrdt_ws" / "server.py"
ROOM = "class"
BOARD = "main"
YJS = "yjs"  # Server.kind of the y-websocket peers


async def start_wb_server(name: str, n: int, liveclass_args: list[str]) -> Server:
    """A fresh whiteboard server on a free 127.0.0.1 port, serving once this returns."""
    tag = f"whiteboard-c{n}"
    if name == "liveclass":
        return await start_server("liveclass", liveclass_args, tag=tag)
    port = free_port()
    log = log_dir() / f"{tag}-{name}-{port}.log"
    if name == "node":
        ensure_node_peer(YJS_PEER, "@y/websocket-server")
        env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port)}
        cmd = ["node", "node_modules/@y/websocket-server/src/server.js"]
        child = await Child.spawn(name, cmd, cwd=YJS_PEER, env=env, log=log)
        ready = "running at"
    elif name == "pycrdt":
        child = await Child.spawn(name, [sys.executable, str(PYCRDT_PEER), str(port)], log=log)
        ready = "ready"
    else:
        raise ValueError(f"unknown server {name!r}; choose from {', '.join(SERVERS)}")
    server = Server(name, YJS, port, child)
    try:
        line = await child.readline(20)
        if not line.startswith(ready):
            raise RuntimeError(f"{name} said {line!r}")
    except BaseException:
        await server.stop()
        raise
    return server


def ms(values_us: list[int]) -> dict[str, float]:
    """summarize() of microsecond samples, in ms (n stays a count)."""
    return {k: (v if k == "n" else round(v / 1000, 3)) for k, v in summarize(values_us).items()}


async def settle(server: Server, pct: float, max_s: float) -> dict[str, float]:
    """Wait until the server uses under ``pct`` % of a core for two 0.25 s samples in a row (the
    joins' sync and awareness handled), at most ``max_s``; returns the time and CPU it took."""
    t0, cpu0 = time.monotonic(), server.cpu_s()
    quiet = 0
    while quiet < 2 and time.monotonic() - t0 < max_s:
        c0 = server.cpu_s()
        await asyncio.sleep(0.25)
        quiet = quiet + 1 if 100 * (server.cpu_s() - c0) / 0.25 < pct else 0
    return {
        "settle_s": round(time.monotonic() - t0, 2),
        "server_cpu_s": round(server.cpu_s() - cpu0, 3),
        "settled": quiet >= 2,
    }


def tree_cpu_s(child: Child) -> float:
    """User + system CPU seconds of a process and its descendants (the clients' helpers)."""
    try:
        root = psutil.Process(child.pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0.0
    for proc in procs:
        try:
            t = proc.cpu_times()
        except psutil.Error:
            continue
        total += t.user + t.system
    return total


class Probe:
    """CPU seconds of the server, the clients, this process and the whole machine over a phase."""

    def __init__(self, server: Server, clients: Child) -> None:
        self.server, self.clients = server, clients
        self.t0 = time.monotonic()
        self.s0, self.c0 = server.cpu_s(), tree_cpu_s(clients)
        self.busy0, self.own0 = busy_cpu_s(), own_cpu_s()

    def read(self) -> dict[str, float]:
        wall = time.monotonic() - self.t0
        s = self.server.cpu_s() - self.s0
        c = tree_cpu_s(self.clients) - self.c0
        other = busy_cpu_s() - self.busy0 - s - c - (own_cpu_s() - self.own0)
        return {
            "wall_s": round(wall, 3),
            "server_cpu_s": round(s, 4),
            "client_cpu_s": round(c, 4),
            "server_cpu_pct": round(100 * s / wall, 1),
            "client_cpu_pct": round(100 * c / wall, 1),
            "other_cpu_pct": round(max(0.0, 100 * other / wall), 1),
        }


def phase_result(res: dict[str, Any], cpu: dict[str, float]) -> dict[str, Any]:
    writes = max(1, res["writes"])
    return {
        "writes": res["writes"],
        "completed": res["completed"],
        "expected": res["expected"],
        "received": res["received"],
        "lost": res["expected"] - res["received"],
        "lat_ms": ms(res["lat_us"]),
        "first_ms": ms(res["first_us"]),
        "all_ms": ms(res["all_us"]),
        "span_s": round(res["span_us"] / 1e6, 3),
        "update_bytes": round(res["update_bytes"], 1),
        **cpu,
        "server_cpu_ms_per_update": round(1000 * cpu["server_cpu_s"] / writes, 3),
        "client_cpu_ms_per_update": round(1000 * cpu["client_cpu_s"] / writes, 3),
    }


async def one_run(name: str, n: int, args: argparse.Namespace) -> dict[str, Any]:
    print(f"whiteboard: {name} clients={n} ...", flush=True)
    server = await start_wb_server(name, n, args.liveclass_args)
    clients: Child | None = None
    out: dict[str, Any] = {"server": name, "clients": n, "writers": min(args.writers, n)}
    try:
        tokens = None
        if name == "liveclass":
            roles = ["teacher"] + ["student"] * (n - 1)
            tokens = [server.token(f"c{i}", roles[i], ROOM) for i in range(n)]
        cfg = {
            "base": f"ws://127.0.0.1:{server.port}/whiteboard/{ROOM}",
            "board": BOARD,
            "n": n,
            "writers": args.writers,
            "procs": args.client_procs,
            "awareness": args.awareness,
            "tokens": tokens,
            "seed": args.seed,
            "connect_timeout_s": 20,
            "deadline_s": args.client_deadline,
        }
        ensure_node_peer(YJS_PEER, "@y/websocket-server")
        clients = await Child.spawn(
            f"yjs-clients-{name}-{n}",
            ["node", "clients.mjs", json.dumps(cfg)],
            cwd=YJS_PEER,
            log=log_dir() / f"whiteboard-clients-{name}-{n}.log",
        )
        t_connect = time.monotonic()
        connected = await clients.read_event("connected", 40)
        out["connect_s"] = round(time.monotonic() - t_connect, 2)
        out["synced"] = connected["ok"]
        out["client_procs"] = connected["procs"]
        if connected["ok"] < n:
            raise RuntimeError(
                f"{connected['ok']}/{n} clients synced; closes {connected['close_codes']}"
            )
        out["settle"] = await settle(server, args.settle_pct, args.settle_max)

        timeout = args.phase_timeout
        clients.send(
            {
                "cmd": "steady",
                "phase": "W",
                "rate": args.rate,
                "count": args.warmup,
                "timeout_s": timeout,
            }
        )
        await clients.read_event("phase", timeout + 30)

        probe = Probe(server, clients)
        await asyncio.sleep(args.idle_seconds)
        out["idle"] = probe.read()

        count = round(args.rate * args.latency_seconds)
        probe = Probe(server, clients)
        clients.send(
            {"cmd": "steady", "phase": "L", "rate": args.rate, "count": count, "timeout_s": timeout}
        )
        res = await clients.read_event("phase", args.latency_seconds + timeout + 30)
        out["steady"] = {"rate": args.rate, **phase_result(res, probe.read())}

        sats = []
        for k in range(args.sat_runs):
            await asyncio.sleep(0.3)
            probe = Probe(server, clients)
            clients.send(
                {
                    "cmd": "saturate",
                    "phase": f"S{k}",
                    "seconds": args.sat_seconds,
                    "window": args.window,
                    "timeout_s": timeout,
                }
            )
            res = await clients.read_event("phase", args.sat_seconds + timeout + 30)
            sat = phase_result(res, probe.read())
            sat["updates_per_s"] = (
                round(sat["completed"] / sat["span_s"], 1) if sat["span_s"] else 0.0
            )
            sats.append(sat)
        out["saturation_runs"] = sats
        med = sorted(sats, key=lambda s: s["updates_per_s"])[len(sats) // 2]
        writes = max(1, sum(s["writes"] for s in sats))
        out["saturation"] = {
            **med,
            "window": args.window,
            "updates_per_s_all": [s["updates_per_s"] for s in sats],
            "lost_all": sum(s["lost"] for s in sats),
            "server_cpu_ms_per_update_all": round(
                1000 * sum(s["server_cpu_s"] for s in sats) / writes, 3
            ),
            "client_cpu_ms_per_update_all": round(
                1000 * sum(s["client_cpu_s"] for s in sats) / writes, 3
            ),
        }
        clients.send({"cmd": "status"})
        status = await clients.read_event("status", 10)
        out["still_open"] = status["open"]
        out["close_codes"] = status["close_codes"]
        out["connection_errors"] = status["errors"]
        out["stray_deliveries"] = status["stray"]
        out["server_rss_mb"] = round(server.rss() / 2**20, 1)
    finally:
        if clients is not None:
            with contextlib.suppress(Exception):
                clients.send({"cmd": "quit"})
            await clients.stop(grace=3.0)
        await server.stop()
    st, sa = out["steady"], out["saturation"]
    print(
        f"  {name} clients={n}: steady p50 {st['lat_ms']['p50']:.2f} ms p99 "
        f"{st['lat_ms']['p99']:.2f} ms, lost {st['lost']}; saturated "
        f"{sa['updates_per_s']:,.0f} updates/s, lost {sa['lost_all']}; server CPU "
        f"{st['server_cpu_ms_per_update']:.2f} / {sa['server_cpu_ms_per_update_all']:.2f} "
        f"ms per update (steady / saturated)",
        flush=True,
    )
    return out


def other_load(r: dict[str, Any]) -> float:
    """The most CPU (% of one core) other processes used in a measured phase of a run."""
    if "saturation" not in r:
        return 0.0
    phases = [r["steady"], *r["saturation_runs"]]
    return max(float(p["other_cpu_pct"]) for p in phases)


def _pair(a: float, b: float, digits: int = 2) -> str:
    return f"{a:.{digits}f} / {b:.{digits}f}"


#: The headline rows: a label (after "<N> clients: ") and the cell of one run.
HEADLINE: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
    (
        "relay p50 / p99 ms (every delivery, steady)",
        lambda r: _pair(r["steady"]["lat_ms"]["p50"], r["steady"]["lat_ms"]["p99"]),
    ),
    (
        "first listener p50 / p99 ms",
        lambda r: _pair(r["steady"]["first_ms"]["p50"], r["steady"]["first_ms"]["p99"]),
    ),
    (
        "last listener p50 / p99 ms",
        lambda r: _pair(r["steady"]["all_ms"]["p50"], r["steady"]["all_ms"]["p99"]),
    ),
    (
        "saturated updates/s, every listener got all (median; runs)",
        lambda r: (
            f"{r['saturation']['updates_per_s']:,.0f} ("
            + ", ".join(f"{x:,.0f}" for x in r["saturation"]["updates_per_s_all"])
            + ")"
        ),
    ),
    (
        "server CPU ms per update, steady / saturated",
        lambda r: _pair(
            r["steady"]["server_cpu_ms_per_update"],
            r["saturation"]["server_cpu_ms_per_update_all"],
            3,
        ),
    ),
    (
        "server CPU %, idle / steady / saturated",
        lambda r: (
            f"{r['idle']['server_cpu_pct']:.0f} / {r['steady']['server_cpu_pct']:.0f} / "
            f"{r['saturation']['server_cpu_pct']:.0f}"
        ),
    ),
    (
        "joins: every client synced / server quiet again, s",
        lambda r: _pair(r["connect_s"], r["connect_s"] + r["settle"]["settle_s"], 1),
    ),
    (
        "clients' CPU % saturated",
        lambda r: f"{r['saturation']['client_cpu_pct']:.0f}",
    ),
]


def report(runs: list[dict[str, Any]]) -> str:
    """Two tables: the headline figures side by side, then every run's details."""
    ok = {(r["server"], r["clients"]): r for r in runs if "saturation" in r}
    servers = [s for s in SERVERS if any(k[0] == s for k in ok)]
    ns = sorted({k[1] for k in ok})
    rows = [
        [f"{n} clients: {label}"] + [f(ok[s, n]) if (s, n) in ok else "n/a" for s in servers]
        for label, f in HEADLINE
        for n in ns
    ]
    headline = md_table(["", *servers], rows)

    detail: list[list[Any]] = []
    for r in runs:
        if "saturation" not in r:
            detail.append([r["server"], r["clients"], r.get("error", "failed")] + [""] * 12)
            continue
        st, sa = r["steady"], r["saturation"]
        detail.append(
            [
                r["server"],
                r["clients"],
                st["update_bytes"],
                st["lat_ms"]["p50"],
                st["lat_ms"]["p99"],
                st["all_ms"]["p99"],
                st["lost"],
                r["idle"]["server_cpu_pct"],
                st["server_cpu_pct"],
                round(sa["updates_per_s"]),
                sa["lat_ms"]["p99"],
                sa["lost_all"],
                sa["server_cpu_ms_per_update_all"],
                sa["client_cpu_ms_per_update_all"],
                round(other_load(r), 1),
            ]
        )
    details = md_table(
        [
            "server",
            "clients",
            "update bytes",
            "steady p50 ms",
            "steady p99 ms",
            "steady last-listener p99 ms",
            "steady lost",
            "server CPU % idle",
            "server CPU % steady",
            "saturated updates/s",
            "saturated p99 ms",
            "saturated lost",
            "server CPU ms/update saturated",
            "clients CPU ms/update saturated",
            "other procs max CPU %",
        ],
        detail,
    )
    return headline + "\n\n" + details


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--clients", type=int_list, default=[2, 50], help="clients in the board")
    p.add_argument(
        "--servers", type=names_of(SERVERS), default=list(SERVERS), help="comma-separated servers"
    )
    p.add_argument("--writers", type=int, default=2, help="clients that write (taking turns)")
    p.add_argument(
        "--client-procs",
        type=int,
        default=2,
        help="Node processes hosting the clients (at most clients / writers)",
    )
    p.add_argument(
        "--no-awareness",
        dest="awareness",
        action="store_false",
        help="diagnostic: clients without an awareness state (no presence traffic at all)",
    )
    p.add_argument(
        "--settle-pct",
        type=float,
        default=10.0,
        help="after the joins, wait until the server uses under this %% of a core",
    )
    p.add_argument("--settle-max", type=float, default=30.0, help="wait at most this long (s)")
    p.add_argument("--rate", type=float, default=50.0, help="steady phase: writes per second")
    p.add_argument("--latency-seconds", type=float, default=10.0, help="steady phase length")
    p.add_argument("--warmup", type=int, default=50, help="warm-up writes (not reported)")
    p.add_argument(
        "--idle-seconds", type=float, default=2.0, help="server CPU with idle clients, measured"
    )
    p.add_argument("--sat-seconds", type=float, default=3.0, help="one saturation run's length")
    p.add_argument("--sat-runs", type=int, default=3, help="saturation runs (median reported)")
    p.add_argument(
        "--window",
        type=int,
        default=16,
        help="saturation: most writes not yet observed by every listener",
    )
    p.add_argument(
        "--phase-timeout",
        type=float,
        default=20.0,
        help="wait for the last deliveries of a phase (s)",
    )
    p.add_argument(
        "--liveclass-args",
        default="",
        help="extra flags for liveclass serve (one string, split on spaces)",
    )
    p.add_argument(
        "--noise-pct",
        type=float,
        default=25.0,
        help="re-run when other processes used more CPU than this (%% of a core)",
    )
    p.add_argument("--noisy-retries", type=int, default=1, help="re-runs of a noisy run")
    p.add_argument(
        "--quiet-wait",
        type=float,
        default=30.0,
        help="before a run, wait up to this long for other processes to go quiet (s)",
    )
    p.add_argument("--seed", type=int, default=1, help="server order per N; shape coordinates")
    p.add_argument("--client-deadline", type=float, default=300.0, help="clients exit after (s)")
    p.add_argument("--max-seconds", type=float, default=600.0, help="hard limit for the run")
    args = p.parse_args()
    args.liveclass_args = args.liveclass_args.split()
    if args.writers < 1 or min(args.clients) < 2:
        p.error("at least one writer and two clients (a writer and a listener)")
    return args


def yjs_versions() -> dict[str, str]:
    v = {
        p: node_pkg_version(p, YJS_PEER)
        for p in ("yjs", "y-websocket", "@y/websocket-server", "y-protocols", "lib0")
    }
    v["ws (clients)"] = node_pkg_version("ws", YJS_PEER)
    v["ws (@y/websocket-server)"] = node_pkg_version(
        "@y/websocket-server/node_modules/ws", YJS_PEER
    )
    for dist in ("pycrdt", "pycrdt-websocket", "anyio"):
        try:
            v[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            v[dist] = "not installed"
    return v


def main() -> None:
    args = parse_args()
    ensure_node_peer(YJS_PEER, "@y/websocket-server")
    env = environment()
    env["versions"].update(yjs_versions())
    runs: list[dict[str, Any]] = []
    started = time.monotonic()

    async def body() -> None:
        runs.extend(
            await run_sides(
                args.clients,
                args.servers,
                lambda name, n: one_run(name, n, args),
                other_load,
                size_key="clients",
                seed=args.seed,
                noise_pct=args.noise_pct,
                noisy_retries=args.noisy_retries,
                quiet_wait_s=args.quiet_wait,
            )
        )

    try:
        run(body, args.max_seconds)
    finally:
        runs.sort(key=lambda r: (r["clients"], SERVERS.index(r["server"])))
        data = {"env": env, "runs": runs}
        finish("whiteboard", args, data, [], report(runs), started)


if __name__ == "__main__":
    main()
