"""Big-class storms: N students in one room on one embedded node and on 2 or 3 cluster nodes.

    .venv/bin/python -m bench.storm    # N = 500,1000,2000, every scenario, every target
    .venv/bin/python -m bench.storm --n 2000 --scenarios upvote --targets embedded,cluster2

Scenarios (each measured from its scheduled start t0):

- ``upvote``: the teacher asks one question (every student has seen it before t0); every student
  upvotes it, the sends spread evenly over ``--upvote-window`` (1 s). Final state: the question's
  vote count equals the upvotes acknowledged, as each student counts it from ``question.upvoted``
  events or from ``tally`` frames (students of large rooms; docs/protocol.md "Vote tallies").
- ``poll``: the teacher opens a poll (seen by every student before t0); every student answers
  within ``--poll-window`` (2 s). Students never see others' answers (docs/protocol.md: only staff
  and that student get ``poll.answered``; students get the tally once the poll is closed), so the
  teacher closes the poll the moment it has seen every acknowledged answer, and the final state is
  ``poll.closed`` with ``voters`` equal to the answers acknowledged. ``staff saw all`` is when the
  teacher had every answer.
- ``chat``: ``--chat-senders`` (200) students send one chat line each within ``--chat-window``
  (1 s). Final state: every member has seen every acknowledged line.

Targets: ``embedded`` (``liveclass serve``, SQLite, in-process bus), ``cluster2`` and ``cluster3``
(that many ``liveclass serve --redis-cluster`` nodes on a fresh local 6-node Redis Cluster,
``bench.cluster_deploy``). Student i joins node i mod nodes directly; the teacher joins node 1.
Each (target, N) gets fresh servers; its students join once and the scenarios run one after another
on the same room. Every node runs with ``--join-rate-per-s 100000 --join-burst 100000`` so that the
students' quick joins are not refused (admission is ``bench.cluster join``'s business).

The students are Node.js ``ws`` clients (``bench/peers/storm_node/students.mjs``, MessagePack with
msgpackr, written from docs/protocol.md), many per Node process (``--clients-per-proc``), driven by
JSON lines from this process; tokens are minted here with the nodes' secret and handed over in a
file. Send, acknowledgement and "seen" times are CLOCK_MONOTONIC in every process.

Reported per (target, N, scenario): ack p50/p99 (send -> ack at the sender), settle time (t0 ->
the moment the last client reached the final state; "not settled in X s" when some never did
within ``--settle-timeout``), frames each student received from t0's announcement to the end of the
settle wait (mean, max), the nodes' CPU (user + system of the ``liveclass`` processes over the
scenario) per command, Redis's beside it, and the Node clients' own CPU: a scenario during which
one client process used more than ``--saturated-pct`` of a core is flagged "harness saturated".
Everything is on 127.0.0.1, bounded in time, and every process started is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import importlib.metadata
import json
import math
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.cluster_deploy import CLUSTER, EMBEDDED, Deployment, deploy, redis_server_version
from bench.common import (
    BENCH,
    REPO,
    RESULTS,
    Child,
    busy_cpu_s,
    ensure_node_peer,
    environment,
    int_list,
    md_table,
    merge_counts,
    names_of,
    node_pkg_version,
    own_cpu_s,
    percentile,
    pid_cpu_s,
    run,
    stop_all,
    wait_quiet,
)

PEER = BENCH / "peers" / "storm_node"
ROOM = "class"
TARGETS: dict[str, tuple[str, int]] = {
    "embedded": (EMBEDDED, 1),
    "cluster2": (CLUSTER, 2),
    "cluster3": (CLUSTER, 3),
}
SCENARIOS = ("upvote", "poll", "chat")
SERVER_ARGS = ("--join-rate-per-s", "100000", "--join-burst", "100000")
LEAD_S = 0.5  # t0 is this far after the `go` is sent, so every client process has it in time


# -- results: pure functions of what the client processes reported -----------------------------


def ack_stats(acked: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Merge the client processes' ``acked`` reports: counts, errors and ack latency (ms)."""
    ms = sorted(v for a in acked for v in a["ack_ms"])
    return {
        "sent": sum(a["sent"] for a in acked),
        "acks": sum(a["acks"] for a in acked),
        "errors": merge_counts([a["errors"] for a in acked]),
        "ack_ms": {
            "p50": percentile(ms, 50),
            "p99": percentile(ms, 99),
            "max": ms[-1] if ms else math.nan,
        },
        "last_answer_ns": max((a["last_answer_ns"] for a in acked), default=0),
    }


def settle_stats(
    settled: Sequence[dict[str, Any]], t0_ns: int, waited_s: float, last_send_s: float = 0.0
) -> dict[str, Any]:
    """Merge the ``settled`` reports: when every client had the final state (s after t0, and after
    the last sender's scheduled send, ``last_send_s`` after t0), frames per student."""
    groups = [s[g] for s in settled for g in ("students", "staff")]
    clients = sum(g["clients"] for g in groups)
    done = sum(g["done"] for g in groups)
    times = sorted((ns - t0_ns) / 1e9 for g in groups for ns in g["settle_ns"])
    frames = [f for s in settled for f in s["students"]["frames"]]
    return {
        "settled": clients > 0 and done == clients,
        "clients": clients,
        "done": done,
        "closed": sum(g["closed"] for g in groups),
        "over": sum(g["over"] for g in groups),
        "not_done_values": merge_counts([g["values"] for g in groups]),
        "settle_s": times[-1] if times and done == clients else math.nan,
        "after_last_send_s": times[-1] - last_send_s if times and done == clients else math.nan,
        "settle_p50_s": percentile(times, 50),
        "waited_s": round(waited_s, 2),
        "frames_mean": sum(frames) / len(frames) if frames else math.nan,
        "frames_max": max(frames, default=0),
        "close_codes": merge_counts([s["close_codes"] for s in settled]),
    }


def cpu_stats(
    cpu: dict[str, Any], commands: int, span_s: float, saturated_pct: float
) -> dict[str, Any]:
    """CPU seconds over a scenario -> per command (ms) and % of a core over ``span_s``;
    ``machine_pct``: the whole machine's busy time, % of all its cores."""
    procs = cpu["client_procs_s"]
    busy, cores = cpu.get("busy_s", math.nan), os.cpu_count() or 1
    per_proc = [100 * c / span_s for c in procs] if span_s > 0 else []
    return {
        **{k: round(v, 3) for k, v in cpu.items() if k != "client_procs_s"},
        "span_s": round(span_s, 3),
        "nodes_ms_per_cmd": 1000 * cpu["nodes_s"] / commands if commands else math.nan,
        "redis_ms_per_cmd": 1000 * cpu["redis_s"] / commands if commands else math.nan,
        "client_proc_pct": [round(p, 1) for p in per_proc],
        "clients_pct": round(100 * sum(procs) / span_s, 1) if span_s > 0 else math.nan,
        "other_pct": round(100 * cpu["other_s"] / span_s, 1) if span_s > 0 else math.nan,
        "machine_pct": round(100 * busy / (cores * span_s), 1) if span_s > 0 else math.nan,
        "harness_saturated": any(p > saturated_pct for p in per_proc),
    }


def settle_cell(s: dict[str, Any]) -> str:
    if s["settled"]:
        return f"{s['settle_s']:.2f} (+{s['after_last_send_s']:.2f})"
    return f"not settled in {s['waited_s']:.0f} s ({s['done']}/{s['clients']})"


def report(runs: Sequence[dict[str, Any]]) -> str:
    rows = []
    for r in runs:
        head = [r["label"], r["n"], r["scenario"], r.get("rep", 1)]
        if "error" in r:
            rows.append([*head, f"failed: {r['error']}"] + [""] * 13)
            continue
        a, s, c = r["acks"], r["settle"], r["cpu"]
        errors = ", ".join(f"{k} {v}" for k, v in sorted(a["errors"].items())) or "0"
        rows.append(
            [
                *head,
                r["joined"],
                f"{a['acks']}/{a['sent']}",
                errors,
                a["ack_ms"]["p50"],
                a["ack_ms"]["p99"],
                settle_cell(s),
                f"{s['frames_mean']:.0f} / {s['frames_max']}",
                c["nodes_s"],
                c["nodes_ms_per_cmd"],
                c["redis_ms_per_cmd"] if r["label"] != EMBEDDED else "-",
                " + ".join(f"{p:.0f}" for p in c["client_proc_pct"]),
                c["other_pct"],
                c.get("machine_pct", math.nan),
                "SATURATED" if c["harness_saturated"] else "no",
            ]
        )
    return md_table(
        [
            "target",
            "N",
            "scenario",
            "rep",
            "joined",
            "acked",
            "errors",
            "ack p50 ms",
            "ack p99 ms",
            "settled s (after the last send)",
            "frames/student mean / max",
            "nodes CPU s",
            "nodes CPU ms/cmd",
            "Redis CPU ms/cmd",
            "client procs CPU % of a core",
            "other procs CPU %",
            "machine busy % (all cores)",
            "harness",
        ],
        rows,
    )


def goals(runs: Sequence[dict[str, Any]]) -> list[str]:
    """The issue's goals at N = 2,000, and a line for every saturated or unsettled scenario."""
    lines = []
    ok = [r for r in runs if "error" not in r]
    for r in ok:
        where = f"{r['label']} N={r['n']} {r['scenario']} rep {r.get('rep', 1)}"
        if r["cpu"]["harness_saturated"]:
            pct = max(r["cpu"]["client_proc_pct"], default=0.0)
            lines.append(
                f"{where}: harness CPU-saturated (a client process at {pct:.0f}% of a core)"
            )
        if not r["settle"]["settled"]:
            lines.append(f"{where}: {settle_cell(r['settle'])}")
    embedded = {(r["n"], r["scenario"]): r for r in ok if r["label"] == EMBEDDED}
    for r in ok:
        if r["n"] != 2000:
            continue
        a, s = r["acks"], r["settle"]
        text = (
            f"goal N=2000 {r['label']} {r['scenario']}: ack p99 {a['ack_ms']['p99']:.0f} ms "
            f"(<= 1000), settled {settle_cell(s)} s after t0 (<= 1.5)"
        )
        if r["scenario"] == "upvote":
            text += f", frames/student max {s['frames_max']} (<= 50)"
        e = embedded.get((r["n"], r["scenario"]))
        if r["label"] != EMBEDDED and e is not None and e["cpu"]["nodes_ms_per_cmd"] > 0:
            ratio = r["cpu"]["nodes_ms_per_cmd"] / e["cpu"]["nodes_ms_per_cmd"]
            text += f", node CPU/cmd {ratio:.2f}x embedded (<= 2)"
        lines.append(text)
    return lines


# -- the client processes ----------------------------------------------------------------------


class Clients:
    """The Node client processes of one deployment, and the JSON-line conversation with them."""

    def __init__(self, procs: list[Child], teacher: Child) -> None:
        self.procs, self.teacher = procs, teacher

    @staticmethod
    async def start(dep: Deployment, n: int, args: argparse.Namespace, tag: str) -> Clients:
        ensure_node_peer(PEER, "msgpackr")
        count = max(1, math.ceil((n + 1) / args.clients_per_proc))
        shares: list[list[dict[str, Any]]] = [[] for _ in range(count)]
        teacher = dep.nodes[0]
        shares[0].append(
            {
                "identity": "teacher",
                "token": teacher.token("teacher", "teacher", ROOM),
                "port": teacher.port,
                "role": "teacher",
                "index": -1,
            }
        )
        for i in range(n):
            node = dep.nodes[i % len(dep.nodes)]
            identity = f"s{i:05d}"
            shares[i % count].append(
                {
                    "identity": identity,
                    "token": node.token(identity, "student", ROOM),
                    "port": node.port,
                    "role": "student",
                    "index": i,
                }
            )
        tmp = Path(tempfile.mkdtemp(prefix="lc-storm-"))
        procs: list[Child] = []
        try:
            for k, path in enumerate(write_configs(tmp, shares, args.concurrency)):
                cmd = ["node", "students.mjs", str(path)]
                procs.append(await Child.spawn(f"{tag}-clients{k}", cmd, cwd=PEER))
            for p in procs:
                await ask(p, None, "ready", 30)  # each has read its file (tokens): delete them
        except BaseException:
            await stop_all(procs)
            raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return Clients(procs, procs[0])

    async def all(self, cmd: dict[str, Any], ev: str, timeout: float) -> list[dict[str, Any]]:
        return list(await asyncio.gather(*(ask(p, cmd, ev, timeout) for p in self.procs)))

    def cpu_s(self) -> list[float]:
        return [pid_cpu_s(p.pid) for p in self.procs]


def write_configs(tmp: Path, shares: list[list[dict[str, Any]]], concurrency: int) -> list[Path]:
    """One config file (owner-only: it holds tokens) per client process."""
    paths = []
    for k, share in enumerate(shares):
        path = tmp / f"clients{k}.json"
        path.touch(mode=0o600)
        path.write_text(json.dumps({"room": ROOM, "concurrency": concurrency, "clients": share}))
        paths.append(path)
    return paths


async def ask(child: Child, cmd: dict[str, Any] | None, ev: str, timeout: float) -> dict[str, Any]:
    """Send ``cmd`` (if any) and read ``child``'s answer ``ev``; a ``failed`` answer raises."""
    if cmd is not None:
        child.send(cmd)
    deadline = time.monotonic() + timeout
    while True:
        obj: dict[str, Any] = json.loads(
            await child.readline(max(0.01, deadline - time.monotonic()))
        )
        if obj.get("ev") == "failed":
            raise RuntimeError(f"{child.name}: {obj.get('error')}")
        if obj.get("ev") == ev:
            return obj


class Meter:
    """CPU seconds of the nodes, Redis, each client process, this process and the rest."""

    def __init__(self, dep: Deployment, clients: Clients) -> None:
        self.dep, self.clients = dep, clients
        self.start = self.sample()

    def sample(self) -> dict[str, Any]:
        return {
            "nodes": self.dep.nodes_cpu_s(),
            "redis": self.dep.redis_cpu_s(),
            "procs": self.clients.cpu_s(),
            "own": own_cpu_s(),
            "busy": busy_cpu_s(),
        }

    def read(self) -> dict[str, Any]:
        a, b = self.start, self.sample()
        procs = [y - x for x, y in zip(a["procs"], b["procs"], strict=True)]
        d = {k: b[k] - a[k] for k in ("nodes", "redis", "own", "busy")}
        other = d["busy"] - d["nodes"] - d["redis"] - sum(procs) - d["own"]
        return {
            "nodes_s": d["nodes"],
            "redis_s": d["redis"],
            "clients_s": sum(procs),
            "client_procs_s": procs,
            "orchestrator_s": d["own"],
            "other_s": max(0.0, other),
            "busy_s": d["busy"],
        }


# -- one scenario ------------------------------------------------------------------------------


async def open_scenario(
    kind: str, tag: str, clients: Clients, args: argparse.Namespace
) -> dict[str, Any]:
    """The teacher's part before t0: ask the question or open the poll, and wait until every
    student has seen it. Returns the scenario as the clients take it."""
    if kind == "chat":
        return {"kind": "chat", "tag": tag, "armed_missing": 0}
    if kind == "upvote":
        watch = {"type": "question.asked", "key": "text", "value": tag}
        frame: dict[str, Any] = {"t": "question.ask", "text": tag}
        key = "question_id"
    else:
        watch = {"type": "poll.opened", "key": "question", "value": tag}
        frame = {"t": "poll.open", "question": tag, "options": ["a", "b", "c", "d"]}
        frame["multiple"] = False
        key = "poll_id"
    await clients.all({"cmd": "watch", **watch}, "watching", 10)
    sent = await teacher_sends(clients, frame, 30)
    if sent["event"] is None:
        raise RuntimeError(f"teacher's {frame['t']} answered {sent['answer']}")
    armed = await clients.all({"cmd": "arm", "timeout_s": 30}, "armed", 40)
    missing = sum(a["missing"] for a in armed)
    if missing:
        print(f"    {missing} students did not see the {frame['t']} within 30 s", flush=True)
    sc = {"kind": kind, key: sent["event"]["data"][key], "armed_missing": missing}
    if kind == "poll":
        sc["options"] = 4
    return sc


async def teacher_sends(clients: Clients, frame: dict[str, Any], timeout: float) -> dict[str, Any]:
    cmd = {"cmd": "send", "identity": "teacher", "frame": frame, "timeout_s": timeout}
    return await ask(clients.teacher, cmd, "sent", timeout * 2 + 5)


async def one_scenario(
    kind: str, rep: int, dep: Deployment, clients: Clients, n: int, args: argparse.Namespace
) -> dict[str, Any]:
    tag = f"storm-{kind}-{rep}-{secrets.token_hex(3)}|"
    await wait_quiet(args.quiet_wait, extra_pids=dep.extra_pids())
    sc = await open_scenario(kind, tag, clients, args)
    senders = min(args.chat_senders, n) if kind == "chat" else n
    window = {"upvote": args.upvote_window, "poll": args.poll_window, "chat": args.chat_window}
    meter = Meter(dep, clients)
    go_ns = time.monotonic_ns()
    t0_ns = go_ns + int(LEAD_S * 1e9)
    go = {
        "cmd": "go",
        "scenario": sc,
        "t0_ns": t0_ns,
        "window_ms": 1000 * window[kind],
        "senders": senders,
        "timeout_s": args.ack_timeout,
    }
    acked = ack_stats(await clients.all(go, "acked", window[kind] + args.ack_timeout + 10))
    target = acked["acks"]
    out: dict[str, Any] = {"scenario": kind, "rep": rep, "senders": senders, "target": target}
    commands = acked["sent"]
    started_wait = time.monotonic()
    if kind == "poll":
        close = {
            "cmd": "close_poll",
            "identity": "teacher",
            "poll_id": sc["poll_id"],
            "target": target,
            "timeout_s": args.settle_timeout,
        }
        closed = await ask(clients.teacher, close, "closed", 2 * args.settle_timeout + 5)
        commands += 1
        out["staff_saw_all_s"] = (
            (closed["seen_all_ns"] - t0_ns) / 1e9 if closed["seen_all_ns"] else math.nan
        )
        out["close_answer"] = closed["answer"].get("t")
    left = max(1.0, args.settle_timeout - (time.monotonic() - started_wait))
    settle_cmd = {"cmd": "settle", "target": target, "timeout_s": left}
    settled = await clients.all(settle_cmd, "settled", left + 15)
    waited_s = (time.monotonic_ns() - t0_ns) / 1e9
    cpu = meter.read()
    last_send_s = window[kind] * (senders - 1) / senders
    s = settle_stats(settled, t0_ns, waited_s, last_send_s)
    span_s = s["settle_s"] + LEAD_S if s["settled"] else (time.monotonic_ns() - go_ns) / 1e9
    out.update(
        {
            "armed_missing": sc["armed_missing"],
            "acks": {**acked, "last_ack_s": (acked["last_answer_ns"] - t0_ns) / 1e9},
            "settle": s,
            "commands": commands,
            "cpu": cpu_stats(cpu, commands, span_s, args.saturated_pct),
        }
    )
    if kind == "upvote":  # the teacher answers it: the next ask stays within the teacher's 5
        await teacher_sends(clients, {"t": "question.answer", "question_id": sc["question_id"]}, 30)
    await asyncio.sleep(1.0)
    return out


def describe(r: dict[str, Any]) -> str:
    a, s, c = r["acks"], r["settle"], r["cpu"]
    return (
        f"  {r['label']} N={r['n']} {r['scenario']}#{r['rep']}: acked {a['acks']}/{a['sent']} "
        f"p50 {a['ack_ms']['p50']:.0f} ms p99 {a['ack_ms']['p99']:.0f} ms; settled "
        f"{settle_cell(s)}; frames/student {s['frames_mean']:.0f} (max {s['frames_max']}); "
        f"nodes {c['nodes_ms_per_cmd']:.2f} ms CPU/cmd; clients {c['clients_pct']:.0f}% CPU"
        + (" (SATURATED)" if c["harness_saturated"] else "")
    )


async def one_deployment(target: str, n: int, args: argparse.Namespace) -> list[dict[str, Any]]:
    side, nodes = TARGETS[target]
    print(f"storm: {target} N={n} ...", flush=True)
    results: list[dict[str, Any]] = []
    base = {"target": target, "label": target, "n": n}
    server_args = (*SERVER_ARGS, *args.server_arg)
    try:
        async with deploy(side, nodes, server_args, tag=f"storm-n{n}") as dep:
            clients = await Clients.start(dep, n, args, tag=f"storm-{target}-n{n}")
            try:
                t = time.monotonic()
                connected = await clients.all(
                    {"cmd": "connect", "timeout_s": args.connect_timeout},
                    "connected",
                    args.connect_timeout + 30,
                )
                joined = sum(c["ok"] for c in connected) - 1  # the teacher
                errors = merge_counts([c["errors"] for c in connected])
                print(
                    f"  {joined}/{n} students joined in {time.monotonic() - t:.1f} s"
                    + (f" (retried: {errors})" if errors else ""),
                    flush=True,
                )
                await asyncio.sleep(1.0)  # the join's presence flushes settle
                for kind in args.scenarios:
                    for rep in range(1, args.repeat + 1):
                        try:
                            r = await one_scenario(kind, rep, dep, clients, n, args)
                        except Exception as exc:  # recorded; the next scenario still runs
                            r = {"scenario": kind, "rep": rep, "error": repr(exc)}
                            print(f"  {target} N={n} {kind}#{rep} FAILED: {exc!r}", flush=True)
                            results.append({**base, "joined": joined, **r})
                            continue
                        r = {**base, "joined": joined, "join_retries": errors, **r}
                        r["nodes_rss_mb"] = [round(s.rss() / 2**20, 1) for s in dep.nodes]
                        print(describe(r), flush=True)
                        results.append(r)
            finally:
                await stop_all(clients.procs)
    except Exception as exc:
        print(f"  {target} N={n} FAILED: {exc!r}", flush=True)
        done = {r["scenario"] for r in results}
        results += [
            {**base, "scenario": k, "rep": 1, "error": repr(exc)}
            for k in args.scenarios
            if k not in done
        ]
    return results


# -- the command line --------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--n", type=int_list, default=[500, 1000, 2000], help="students per room")
    p.add_argument(
        "--scenarios", type=names_of(SCENARIOS), default=list(SCENARIOS), help="upvote,poll,chat"
    )
    p.add_argument(
        "--targets",
        type=names_of(tuple(TARGETS)),
        default=list(TARGETS),
        help="embedded,cluster2,cluster3",
    )
    p.add_argument("--repeat", type=int, default=1, help="runs of each scenario per deployment")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="JSON results file (default: "
        "bench/results/storm-<UTC time>.json, and storm-latest.json)",
    )
    p.add_argument("--upvote-window", type=float, default=1.0, help="upvotes spread over (s)")
    p.add_argument("--poll-window", type=float, default=2.0, help="poll answers spread over (s)")
    p.add_argument("--chat-window", type=float, default=1.0, help="chat lines spread over (s)")
    p.add_argument("--chat-senders", type=int, default=200, help="students sending a chat line")
    p.add_argument("--clients-per-proc", type=int, default=700, help="clients per Node process")
    p.add_argument("--concurrency", type=int, default=32, help="joins in flight per Node process")
    p.add_argument("--connect-timeout", type=float, default=120.0, help="all students joined (s)")
    p.add_argument("--ack-timeout", type=float, default=120.0, help="a command's answer (s)")
    p.add_argument("--settle-timeout", type=float, default=120.0, help="final state seen (s)")
    p.add_argument(
        "--saturated-pct",
        type=float,
        default=80.0,
        help="a client process above this %% of a core is reported as saturated",
    )
    p.add_argument(
        "--quiet-wait",
        type=float,
        default=30.0,
        help="before each scenario, wait up to this long for a quiet machine (s)",
    )
    p.add_argument(
        "--server-arg",
        action="append",
        default=[],
        help="an extra `liveclass serve` argument, e.g. --server-arg=--large-room=100",
    )
    p.add_argument("--max-seconds", type=float, default=3600.0, help="hard limit for the run")
    return p.parse_args()


def main() -> None:
    args = parse_args()
    env = environment()
    env["versions"]["redis-server"] = redis_server_version()
    env["versions"]["redis-py"] = importlib.metadata.version("redis")
    env["versions"]["msgpackr"] = node_pkg_version("msgpackr", PEER)
    env["versions"]["ws (clients)"] = node_pkg_version("ws", PEER)
    env["server_code"] = server_code_commit()
    print(f"storm: liveclass at {describe_commit(env)}, {env['date']}", flush=True)
    runs: list[dict[str, Any]] = []
    started = time.monotonic()

    async def body() -> None:
        for n in args.n:
            for target in args.targets:
                runs.extend(await one_deployment(target, n, args))

    try:
        run(body, args.max_seconds)
    finally:
        goal_lines = goals(runs)
        data = {
            "bench": "storm",
            "env": env,
            "params": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "runs": runs,
            "goals": goal_lines,
            "wall_s": round(time.monotonic() - started, 1),
        }
        path = write(data, args.out)
        print()
        machine = f"{env['cpu']}, {env['nproc']} cores"
        print(f"liveclass at {describe_commit(env)} ({env['date']}; {machine})")
        print()
        print(report(runs))
        print()
        for line in goal_lines:
            print(line)
        print(f"\nresults: {path} ({data['wall_s']} s)")


def server_code_commit() -> str:
    """The newest commit that changed anything but the benchmarks, the tests and the docs."""
    cmd = ["git", "log", "-1", "--format=%h", "--", ".", ":!bench", ":!tests", ":!docs"]
    try:
        done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=10)
    except OSError:
        return "unknown"
    return done.stdout.strip() or "unknown"


def describe_commit(env: dict[str, Any]) -> str:
    return f"{env['git'] or 'unknown commit'} (server code as of {env['server_code']})"


def write(data: dict[str, Any], out: Path | None) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, indent=1)
    (RESULTS / "storm-latest.json").write_text(text)
    if out is None:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        out = RESULTS / f"storm-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    return out


if __name__ == "__main__":
    main()
