"""Idle connections: server memory (RSS) per connected student.

    .venv/bin/python -m bench.idle_rss --n 5000

For each target a fresh server is started; its RSS (psutil, from /proc/PID/statm) is read once it
serves and before the first connection, then ``--n`` students connect from ``--workers``
processes (RLIMIT_NOFILE raised to the hard limit), join, and stay idle for ``--idle`` seconds;
RSS is read again. Reported: (after - before) / N in KB (1 KB = 1024 bytes).

Targets:
- ``liveclass``: every student joins one room;
- ``liveclass-rooms``: students spread over ``--rooms`` rooms;
- ``liveclass-ws-only``: the WebSocket is opened but no ``join`` is sent (the transport's share);
- ``python-socketio``, ``node-socketio``: the peers of bench/fanout.py, one room, for context.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from bench.common import (
    environment,
    finish,
    gather_event,
    int_list,
    md_table,
    merge_counts,
    names_of,
    run,
    start_server,
    start_workers,
    stop_all,
    wait_quiet,
)

TARGETS = ("liveclass", "liveclass-rooms", "liveclass-ws-only", "python-socketio", "node-socketio")


async def one_run(target: str, n: int, args: argparse.Namespace) -> dict[str, Any]:
    server_name = "liveclass" if target.startswith("liveclass") else target
    rooms = args.rooms if target == "liveclass-rooms" else 1
    print(f"idle_rss: {target} N={n} ({rooms} room(s)) ...", flush=True)
    server = await start_server(server_name, tag=f"idle-{target}")
    workers = []
    out: dict[str, Any] = {"target": target, "n": n, "rooms": rooms}
    try:
        await asyncio.sleep(1.0)
        before = server.rss()
        students = [(f"s{i:05d}", f"room{i % rooms}") for i in range(n)]
        base = {
            "kind": server.kind,
            "port": server.port,
            "secret": server.secret,
            "ws_only": target == "liveclass-ws-only",
            "concurrency": 32,
            "retries": 2,
            "timeout_s": 20,
            "deadline_s": args.idle + 240,
        }
        t0 = time.monotonic()
        workers = await start_workers(args.workers, students, base, tag=f"idle-{target}-w")
        connected = await gather_event(workers, "connected", timeout=180)
        out["connect_s"] = round(time.monotonic() - t0, 1)
        await asyncio.sleep(args.idle)
        after = server.rss()
        status = await gather_event(workers, "status", 10, {"cmd": "status"})
        ok = sum(c["ok"] for c in connected)
        out.update(
            {
                "connected": ok,
                "failures": merge_counts([c["failures"] for c in connected]),
                "retried": merge_counts([c["retried"] for c in connected]),
                "still_open": sum(s["open"] for s in status),
                "rss_before_mb": round(before / 2**20, 1),
                "rss_after_mb": round(after / 2**20, 1),
                "kb_per_connection": round((after - before) / max(1, ok) / 1024, 1),
            }
        )
        if server.name == "liveclass":
            m = await asyncio.to_thread(server.metrics)
            out["server_connections"] = int(m.get("liveclass_connections", 0))
    finally:
        await stop_all(workers)
        await server.stop()
    print(
        f"  {target}: {out['connected']}/{n} connected, RSS {out['rss_before_mb']} -> "
        f"{out['rss_after_mb']} MB, {out['kb_per_connection']} KB/connection",
        flush=True,
    )
    return out


def report(runs: list[dict[str, Any]]) -> str:
    rows = []
    for r in runs:
        if "kb_per_connection" not in r:
            rows.append([r["target"], r["n"], r.get("error", "failed"), "", "", "", ""])
            continue
        rows.append(
            [
                r["target"],
                r["rooms"],
                f"{r['still_open']:,}/{r['n']:,}",
                r["rss_before_mb"],
                r["rss_after_mb"],
                r["kb_per_connection"],
                r["connect_s"],
            ]
        )
    return md_table(
        [
            "server",
            "rooms",
            "open after idle",
            "RSS before MB",
            "RSS after MB",
            "KB per connection",
            "connect time s",
        ],
        rows,
    )


def goals(runs: list[dict[str, Any]]) -> list[str]:
    lines = []
    for r in runs:
        if r["target"] in ("liveclass", "liveclass-rooms") and "kb_per_connection" in r:
            kb = r["kb_per_connection"]
            verdict = "MET" if kb <= 30 and r["still_open"] == r["n"] else "MISSED"
            lines.append(
                f"{r['target']} ({r['rooms']} room(s)): {kb} KB per connected student at "
                f"N={r['n']} (goal <= 30 KB): {verdict}"
            )
    return lines


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--n", type=int_list, default=[5000], help="connections per run")
    p.add_argument(
        "--targets", type=names_of(TARGETS), default=list(TARGETS), help="comma-separated targets"
    )
    p.add_argument("--rooms", type=int, default=50, help="rooms for liveclass-rooms")
    p.add_argument("--idle", type=float, default=5.0, help="idle seconds before measuring")
    p.add_argument("--workers", type=int, default=4, help="client processes")
    p.add_argument("--max-seconds", type=float, default=600.0, help="hard limit for the run")
    args = p.parse_args()
    return args


def main() -> None:
    args = parse_args()
    env = environment()
    runs: list[dict[str, Any]] = []
    started = time.monotonic()

    async def body() -> None:
        for n in args.n:
            for target in args.targets:
                quiet = await wait_quiet(max_wait_s=30)
                try:
                    result = await one_run(target, n, args)
                except Exception as exc:
                    print(f"  {target} N={n} FAILED: {exc!r}", flush=True)
                    result = {"target": target, "n": n, "error": repr(exc)}
                result["before_run"] = quiet
                runs.append(result)

    try:
        run(body, args.max_seconds)
    finally:
        data = {"env": env, "runs": runs}
        finish("idle_rss", args, data, goals(runs), report(runs), started)


if __name__ == "__main__":
    main()
