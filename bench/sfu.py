"""SFU benchmark (issue 5): CPU of the SFU forwarding one 640x480 @ 30 fps VP8 camera to N
subscribers, and a new subscriber's time to first frame, for liveclass's SFU, aiortc's MediaRelay
and Janus, side by side in one run.

    .venv/bin/python -m bench.sfu                 # N = 1, 4, 8, 16; all three sides; ~10 min
    .venv/bin/python -m bench.sfu --quick         # smoke check: N = 1, 4, short windows; < 2 min

Sides (:mod:`bench.sfu_sides`): ``liveclass`` (``liveclass serve``, embedded, ICE on 127.0.0.1),
``mediarelay`` (aiortc ``MediaRelay``: one decode + N encodes, ``bench/peers/mediarelay``) and
``janus`` (Janus 1.1.2 VideoRoom, in a network namespace the bench makes, :mod:`bench.sfu_janus`).

The publisher's camera is a VP8 clip encoded once before the runs (:mod:`bench.sfu_clip`: 640x480,
30 fps, ``--bitrate-kbps`` CBR, a keyframe whenever the SFU asks), so every SFU forwards the same
bytes. For every (side, N): a fresh SFU process; one publisher process (``bench.sfu_media``); the
N subscribers in ``ceil(N / --subs-per-proc)`` processes that never decode (``sfu.passthrough``
installed: each received frame is counted as an encoded packet). Once every subscriber has its
first keyframe, a ``--warmup`` follows, then a ``--window`` over which are read: the SFU process's
CPU time (user + system, every thread, psutil), every subscriber's frames, bytes and keyframes
received, the publisher's frames and keyframes sent, and the CPU of the peers and of every other
process on the machine. Cores = CPU seconds / wall seconds.

Then, per side, a fresh SFU and publisher and ``--trials`` new subscribers one after another
(``--gap`` apart): time from the start of the subscription (liveclass: ``media.subscribe`` sent)
to the first keyframe received (the first frame a decoder can show).

Results: bench/results/sfu-*.json and markdown tables. Everything stays on 127.0.0.0/8 or inside
the namespace the bench made; every process started is stopped at the end, on failure, on the
``--max-seconds`` limit and on Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import math
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from bench.common import (
    Child,
    busy_cpu_s,
    child_cpu_s,
    environment,
    finish,
    int_list,
    md_table,
    names_of,
    own_cpu_s,
    percentile,
    run,
    run_sides,
    stop_all,
)
from bench.sfu_clip import encode_clip
from bench.sfu_janus import janus_version
from bench.sfu_sides import SIDES, SideUnderTest, read_peer_event, spawn_peer, start_side

#: The issue's goals.
GOAL_SLOPE_CORES = 0.005
GOAL_RELAY_RATIO = 15.0
GOAL_TTFF_MS = 300.0


# -- one CPU run ------------------------------------------------------------------------------


async def start_publisher(side: SideUnderTest, args: argparse.Namespace, tag: str) -> Child:
    cfg: dict[str, Any] = {"clip": args.clip}
    if side.token is not None:
        cfg["tokens"] = [side.token("teacher", "teacher")]
    return await spawn_peer(side, "publish", cfg, f"{tag}-pub", deadline_s=args.peer_deadline)


async def snapshot(
    side: SideUnderTest, pub: Child, subs: list[Child], peers: list[Child]
) -> dict[str, Any]:
    """Counters of every peer and CPU readings, at one moment."""
    for child in [pub, *subs]:
        child.send({"cmd": "stats"})
    replies = await asyncio.gather(*(read_peer_event(c, "stats", 10) for c in [pub, *subs]))
    return {
        "t": time.monotonic(),
        "sfu_cpu_s": side.cpu_s(),
        "sfu_sys_s": side.cpu_split_s()[1],
        "pub_cpu_s": child_cpu_s(pub),
        "subs_cpu_s": sum(child_cpu_s(c) for c in subs),
        "peers_cpu_s": sum(child_cpu_s(c) for c in peers),
        "busy_s": busy_cpu_s(),
        "softirq_s": float(psutil.cpu_times().softirq),
        "own_s": own_cpu_s(),
        "pub": replies[0],
        "subs": replies[1:],
    }


def window_figures(a: dict[str, Any], b: dict[str, Any], n: int) -> dict[str, Any]:
    """What happened between snapshots ``a`` and ``b``."""
    wall = b["t"] - a["t"]
    fps, kbps, keyframes, connected = [], [], 0, 0
    for before, after in zip(a["subs"], b["subs"], strict=True):
        dt = after["t"] - before["t"]
        for s0, s1 in zip(before["subs"], after["subs"], strict=True):
            fps.append((s1["frames"] - s0["frames"]) / dt)
            kbps.append((s1["bytes"] - s0["bytes"]) * 8 / dt / 1000)
            keyframes += s1["keyframes"] - s0["keyframes"]
        connected += sum(state == "connected" for state in after["states"])
    p0, p1 = a["pub"], b["pub"]
    pub_fps = (p1["frames"] - p0["frames"]) / (p1["t"] - p0["t"])
    sfu = b["sfu_cpu_s"] - a["sfu_cpu_s"]
    peers = b["peers_cpu_s"] - a["peers_cpu_s"]
    own = b["own_s"] - a["own_s"]
    softirq = b["softirq_s"] - a["softirq_s"]
    other = b["busy_s"] - a["busy_s"] - softirq - sfu - peers - own
    fps_sorted = sorted(fps)
    return {
        "seconds": round(wall, 2),
        "sfu_cores": round(sfu / wall, 4),
        "sfu_system_pct": round(100 * (b["sfu_sys_s"] - a["sfu_sys_s"]) / sfu, 1) if sfu else 0.0,
        "publisher_fps": round(pub_fps, 2),
        "publisher_keyframes": p1["keyframes"] - p0["keyframes"],
        "sub_fps": [round(x, 2) for x in fps],
        "sub_fps_min": round(fps_sorted[0], 2) if fps else math.nan,
        "sub_fps_median": round(statistics.median(fps), 2) if fps else math.nan,
        "sub_kbps_median": round(statistics.median(kbps), 1) if kbps else math.nan,
        "delivered_pct": round(100 * sum(fps) / (n * pub_fps), 1) if pub_fps else math.nan,
        "keyframes_received": keyframes,
        "subs_connected": connected,
        "pub_cores": round((b["pub_cpu_s"] - a["pub_cpu_s"]) / wall, 3),
        "subs_cores": round((b["subs_cpu_s"] - a["subs_cpu_s"]) / wall, 3),
        "other_cpu_pct": round(max(0.0, 100 * other / wall), 1),
        "softirq_pct": round(100 * softirq / wall, 1),
        "machine_busy_pct": round(100 * (b["busy_s"] - a["busy_s"]) / wall, 1),
    }


async def cpu_run(name: str, n: int, args: argparse.Namespace) -> dict[str, Any]:
    print(f"sfu: {name} N={n} ...", flush=True)
    tag = f"sfu-{name}-n{n}"
    side = await start_side(name, tag)
    out: dict[str, Any] = {"server": name, "n": n}
    peers: list[Child] = []
    try:
        pub = await start_publisher(side, args, tag)
        peers.append(pub)
        published = await read_peer_event(pub, "ready", 30)
        shares = [
            len(range(i, n, math.ceil(n / args.subs_per_proc)))
            for i in range(math.ceil(n / args.subs_per_proc))
        ]
        subs: list[Child] = []
        first = 0
        for k, count in enumerate(shares):
            cfg: dict[str, Any] = {"count": count, "feed": published.get("feed")}
            if side.token is not None:
                cfg["tokens"] = [side.token(f"s{first + i:03d}", "student") for i in range(count)]
            first += count
            subs.append(
                await spawn_peer(side, "subscribe", cfg, f"{tag}-sub{k}", args.peer_deadline)
            )
        peers.extend(subs)
        readies = await asyncio.gather(*(read_peer_event(c, "ready", 60) for c in subs))
        out["receiving"] = sum(r["receiving"] for r in readies)
        out["first_keyframe_ms"] = [x for r in readies for x in r["first_keyframe_ms"]]
        await asyncio.sleep(args.warmup)
        a = await snapshot(side, pub, subs, peers)
        await asyncio.sleep(args.window)
        b = await snapshot(side, pub, subs, peers)
        out["window"] = window_figures(a, b, n)
        out["sfu_threads"] = side.threads()
        if side.metrics is not None:
            out["sfu_metrics"] = await asyncio.to_thread(side.metrics)
        out["sfu_rss_mb"] = side.rss_mb()
    finally:
        await stop_all(peers)
        await side.stop()
    w = out["window"]
    print(
        f"  {name} N={n}: SFU {w['sfu_cores']:.3f} cores; subscriber fps min "
        f"{w['sub_fps_min']:.1f} median {w['sub_fps_median']:.1f} (publisher "
        f"{w['publisher_fps']:.1f}); {w['sub_kbps_median']:.0f} kbps; machine "
        f"{w['machine_busy_pct']:.0f}% busy",
        flush=True,
    )
    return out


# -- time to first frame ------------------------------------------------------------------------


async def ttff_run(name: str, args: argparse.Namespace) -> dict[str, Any]:
    print(f"sfu: {name} time to first frame, {args.trials} trials ...", flush=True)
    tag = f"sfu-{name}-ttff"
    side = await start_side(name, tag)
    out: dict[str, Any] = {"server": name}
    peers: list[Child] = []
    try:
        pub = await start_publisher(side, args, tag)
        peers.append(pub)
        published = await read_peer_event(pub, "ready", 30)
        await asyncio.sleep(1.0)  # the publisher's connection is up and sending
        cfg: dict[str, Any] = {
            "trials": args.trials,
            "gap_s": args.gap,
            "timeout_s": 10,
            "feed": published.get("feed"),
        }
        if side.token is not None:
            cfg["tokens"] = [side.token(f"t{i:03d}", "student") for i in range(args.trials)]
        deadline = args.trials * (10 + args.gap + 5) + 30
        trials = await spawn_peer(side, "ttff", cfg, f"{tag}-trials", deadline)
        peers.append(trials)
        out["trials"] = (await read_peer_event(trials, "ttff", deadline))["trials"]
        pub.send({"cmd": "stats"})
        out["publisher_keyframes"] = (await read_peer_event(pub, "stats", 10))["keyframes"]
    finally:
        await stop_all(peers)
        await side.stop()
    good = [t for t in out["trials"] if "error" not in t]
    ok = sorted(t["first_keyframe_ms"] for t in good)
    any_frame = sorted(t["first_frame_ms"] for t in good)
    connected = sorted(
        t["connected_ms"] for t in out["trials"] if t.get("connected_ms") is not None
    )
    out["ttff_ms"] = {
        "ok": len(ok),
        "failed": len(out["trials"]) - len(ok),
        "p50": round(percentile(ok, 50), 1),
        "p95": round(percentile(ok, 95), 1),
        "max": round(ok[-1], 1) if ok else math.nan,
        "connected_p50": round(percentile(connected, 50), 1),
        "any_frame_p50": round(percentile(any_frame, 50), 1),
        "frames_before_keyframe": sum(t["frames_before_keyframe"] for t in good),
    }
    t = out["ttff_ms"]
    print(
        f"  {name}: first keyframe p50 {t['p50']:.0f} ms, p95 {t['p95']:.0f} ms "
        f"({t['ok']}/{len(out['trials'])} ok)",
        flush=True,
    )
    return out


# -- report ---------------------------------------------------------------------------------


def slope(points: list[tuple[int, float]]) -> float:
    """Least-squares slope of cores against N (cores per extra subscriber)."""
    if len(points) < 2:
        return math.nan
    mx = sum(x for x, _ in points) / len(points)
    my = sum(y for _, y in points) / len(points)
    sxx = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / sxx if sxx else math.nan


def cores_by_side(runs: list[dict[str, Any]]) -> dict[str, dict[int, float]]:
    out: dict[str, dict[int, float]] = {}
    for r in runs:
        if "window" in r:
            out.setdefault(r["server"], {})[r["n"]] = r["window"]["sfu_cores"]
    return out


def report(runs: list[dict[str, Any]], ttff: list[dict[str, Any]]) -> str:
    rows = []
    for r in runs:
        w = r.get("window")
        if w is None:
            rows.append([r["server"], r["n"], r.get("error", "failed")] + [""] * 11)
            continue
        rows.append(
            [
                r["server"],
                r["n"],
                f"{w['sfu_cores']:.3f}",
                f"{w['sfu_system_pct']:.0f}",
                f"{w['sub_fps_min']:.1f} / {w['sub_fps_median']:.1f}",
                f"{w['publisher_fps']:.1f}",
                f"{w['delivered_pct']:.1f}",
                round(w["sub_kbps_median"]),
                w["keyframes_received"],
                f"{r['receiving']}/{r['n']}",
                f"{w['pub_cores']:.2f}",
                f"{w['subs_cores']:.2f}",
                f"{w['machine_busy_pct']:.0f}",
                f"{w['other_cpu_pct']:.0f}",
            ]
        )
    table = md_table(
        [
            "SFU",
            "N",
            "SFU cores",
            "of which system CPU %",
            "fps per subscriber (min / median)",
            "publisher fps",
            "frames delivered %",
            "kbps per subscriber",
            "keyframes received",
            "receiving",
            "publisher cores",
            "subscriber procs cores",
            "machine busy % (of 200)",
            "other procs %",
        ],
        rows,
    )
    by = cores_by_side(runs)
    ours = by.get("liveclass", {})
    srows = []
    for name in SIDES:
        cores = by.get(name)
        if not cores:
            continue
        ns = sorted(cores)
        s = slope([(n, cores[n]) for n in ns])
        ratio = [f"{cores[n] / ours[n]:.1f}x" if n in ours and ours[n] > 0 else "n/a" for n in ns]
        our_slope = slope([(n, ours[n]) for n in sorted(ours)]) if ours else math.nan
        srows.append(
            [
                name,
                " / ".join(f"{cores[n]:.3f}" for n in ns),
                f"{s:.4f}",
                " / ".join(ratio),
                f"{s / our_slope:.1f}x" if our_slope and our_slope > 0 else "n/a",
            ]
        )
    ns_all = sorted({r["n"] for r in runs})
    summary = md_table(
        [
            "SFU",
            "cores at N = " + ", ".join(map(str, ns_all)),
            "cores per extra subscriber (least squares)",
            "cores / liveclass's, per N",
            "slope / liveclass's",
        ],
        srows,
    )
    trows = []
    for t in ttff:
        f = t.get("ttff_ms")
        if f is None:
            trows.append([t["server"], t.get("error", "failed"), "", "", "", "", "", "", ""])
            continue
        trows.append(
            [
                t["server"],
                f"{f['ok']}/{f['ok'] + f['failed']}",
                f["p50"],
                f["p95"],
                f["max"],
                f["connected_p50"],
                f["any_frame_p50"],
                f["frames_before_keyframe"],
                t.get("publisher_keyframes", ""),
            ]
        )
    ttff_table = md_table(
        [
            "SFU",
            "trials ok",
            "first keyframe p50 ms",
            "p95 ms",
            "max ms",
            "connected p50 ms",
            "first frame of any kind p50 ms",
            "frames before the keyframe (all trials)",
            "keyframes sent by the publisher",
        ],
        trows,
    )
    return f"{table}\n\n{summary}\n\n{ttff_table}"


def goals(runs: list[dict[str, Any]], ttff: list[dict[str, Any]]) -> list[str]:
    by = cores_by_side(runs)
    ours = by.get("liveclass", {})
    lines = []
    if len(ours) >= 2:
        s = slope(sorted(ours.items()))
        verdict = "MET" if s <= GOAL_SLOPE_CORES else "MISSED"
        lines.append(
            f"liveclass: {s:.4f} cores per extra subscriber (goal <= {GOAL_SLOPE_CORES}): {verdict}"
        )
    relay = by.get("mediarelay", {})
    common = sorted(set(ours) & set(relay))
    if common:
        top = common[-1]
        ratio = relay[top] / ours[top] if ours[top] > 0 else math.inf
        verdict = "MET" if ratio >= GOAL_RELAY_RATIO else "MISSED"
        lines.append(
            f"MediaRelay / liveclass SFU CPU at N={top}: {ratio:.1f}x "
            f"(goal >= {GOAL_RELAY_RATIO:.0f}x): {verdict}"
        )
        if len(common) >= 2:
            rs = slope([(n, relay[n]) for n in common])
            os_ = slope([(n, ours[n]) for n in common])
            if os_ > 0:
                verdict = "MET" if rs / os_ >= GOAL_RELAY_RATIO else "MISSED"
                lines.append(
                    f"MediaRelay / liveclass per extra subscriber: {rs / os_:.1f}x "
                    f"(goal >= {GOAL_RELAY_RATIO:.0f}x): {verdict}"
                )
    janus = by.get("janus", {})
    for n in sorted(set(ours) & set(janus)):
        if janus[n] > 0:
            lines.append(f"liveclass / Janus SFU CPU at N={n}: {ours[n] / janus[n]:.1f}x")
    for t in ttff:
        f = t.get("ttff_ms")
        if t["server"] == "liveclass" and f is not None:
            met = f["p50"] <= GOAL_TTFF_MS and f["p95"] <= GOAL_TTFF_MS and not f["failed"]
            lines.append(
                f"liveclass time to first keyframe p50 {f['p50']:.0f} ms, p95 {f['p95']:.0f} ms, "
                f"{f['failed']} failed (goal <= {GOAL_TTFF_MS:.0f} ms): "
                f"{'MET' if met else 'MISSED'}"
            )
    for r in runs:
        w = r.get("window")
        if w is not None and (w["delivered_pct"] < 95 or r["receiving"] < r["n"]):
            lines.append(
                f"{r['server']} N={r['n']}: {r['receiving']}/{r['n']} receiving, "
                f"{w['delivered_pct']:.1f}% of the publisher's frames delivered "
                f"(min {w['sub_fps_min']:.1f} fps)"
            )
    return lines


# -- main ---------------------------------------------------------------------------------------


def other_load(r: dict[str, Any]) -> float:
    return float(r["window"]["other_cpu_pct"]) if "window" in r else 0.0


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--n", type=int_list, default=None, help="subscribers per run (1,4,8,16)")
    p.add_argument("--sides", type=names_of(SIDES), default=list(SIDES), help="comma-separated")
    p.add_argument("--bitrate-kbps", type=int, default=1000, help="publisher's fixed VP8 bitrate")
    p.add_argument("--warmup", type=float, default=None, help="s after every first frame (5)")
    p.add_argument("--window", type=float, default=None, help="measured window, s (20)")
    p.add_argument("--subs-per-proc", type=int, default=8, help="subscribers per process")
    p.add_argument("--trials", type=int, default=None, help="time-to-first-frame trials (20)")
    p.add_argument("--gap", type=float, default=2.0, help="s between two trials")
    p.add_argument("--no-ttff", action="store_true", help="skip time to first frame")
    p.add_argument(
        "--quick",
        action="store_true",
        help="smoke check: N = 1,4, warm-up 2 s, window 4 s, 4 trials, no wait for a quiet machine",
    )
    p.add_argument("--noise-pct", type=float, default=25.0, help="re-run above this other CPU %%")
    p.add_argument("--noisy-retries", type=int, default=None, help="re-runs of a noisy run (1)")
    p.add_argument("--seed", type=int, default=1, help="shuffles the side order per N")
    p.add_argument("--max-seconds", type=float, default=None, help="hard limit (2400; quick 240)")
    args = p.parse_args()
    quick = args.quick
    defaults = {
        "n": ([1, 4], [1, 4, 8, 16]),
        "warmup": (2.0, 5.0),
        "window": (4.0, 20.0),
        "trials": (4, 20),
        "noisy_retries": (0, 1),
        "max_seconds": (240.0, 2400.0),
    }
    for key, (q, full) in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, q if quick else full)
    args.quiet_wait = 0.0 if quick else 90.0
    args.peer_deadline = args.warmup + args.window + 180
    args.clip = str(Path(tempfile.gettempdir()) / f"liveclass-bench-sfu-clip-{os.getpid()}.json")
    return args


def main() -> None:
    args = parse_args()
    env = environment()
    env["versions"].update(
        {
            dist: _version(dist)
            for dist in ("aiortc", "aioice", "av", "pylibsrtp", "aiohttp", "psutil")
        }
    )
    env["versions"]["janus"] = janus_version()
    runs: list[dict[str, Any]] = []
    ttff: list[dict[str, Any]] = []
    started = time.monotonic()

    async def body() -> None:
        clip = await encode_clip(640, 480, args.bitrate_kbps * 1000)
        clip.save(Path(args.clip))
        env["clip_kbps"] = round(clip.kbps(), 1)
        print(f"sfu: VP8 clip 640x480, {clip.kbps():.0f} kbit/s at 30 fps", flush=True)
        runs.extend(
            await run_sides(
                args.n,
                args.sides,
                lambda name, n: cpu_run(name, n, args),
                other_load,
                size_key="n",
                seed=args.seed,
                noise_pct=args.noise_pct,
                noisy_retries=args.noisy_retries,
                quiet_wait_s=args.quiet_wait,
            )
        )
        if args.no_ttff:
            return
        for name in args.sides:
            try:
                ttff.append(await ttff_run(name, args))
            except Exception as exc:
                print(f"  {name} time to first frame FAILED: {exc!r}", flush=True)
                ttff.append({"server": name, "error": repr(exc)})

    try:
        run(body, args.max_seconds)
    finally:
        Path(args.clip).unlink(missing_ok=True)
        runs.sort(key=lambda r: (r["n"], SIDES.index(r["server"])))
        data = {"env": env, "runs": runs, "ttff": ttff}
        finish("sfu", args, data, goals(runs, ttff), report(runs, ttff), started)


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


if __name__ == "__main__":
    main()
