"""Scale-out failover: SIGKILL of the Redis master that owns the room's slot while a teacher sends
at a steady rate to N students on 2 liveclass nodes; what the students got, and when.

    .venv/bin/python -m bench.cluster failover --n 2000 --rate 20 --runs 3

Each run gets a fresh 6-node Redis Cluster and ``--nodes`` ``liveclass serve --redis-cluster``
nodes (with ``bench.cluster_fanout.LIVECLASS_ARGS``: the teacher's retries are never refused by its
own rate limit, nor the students' quick connects by the join rate limit). The teacher joins node 1,
student i joins node i mod nodes directly. The teacher sends chat line ``F|<seq>|<ns>`` at
``--rate`` per second; ``--before`` seconds in, the master serving ``room:{class}:log``'s slot is
SIGKILLed, its replica is polled every 10 ms until it reports ``role:master`` (the promotion), and
the teacher goes on for ``--after`` seconds more. A send answered ``error{code: "unavailable"}``
(or ``rate_limited``) was not acknowledged; the teacher sends the same seq again after
``retry_after_ms``, as a client should. Every student's deliveries of the phase are kept (seq,
arrival time) and compared with the seqs the teacher got an ``ack`` for:

- lost: an acknowledged seq a student never received (goal 0);
- repeated: a seq a student received more than once (goal 0);
- not acknowledged but delivered: the append committed although the teacher was told otherwise
  or never answered (a retry of it then shows as a second copy under another event id);
- gap: the longest time between two consecutive deliveries at a student (normally 1 / rate);
- promotion -> first delivery: from the moment the replica was seen promoted to the student's
  first delivery after it.

The killed master stays down (a crash nobody has attended to yet) unless ``--restart-after S``
starts it again S seconds after the promotion, as an operator would; it rejoins as a replica.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

import msgpack

from bench.cluster_deploy import CLUSTER, Deployment, deploy
from bench.cluster_fanout import LIVECLASS_ARGS, Meter
from bench.common import (
    HOST,
    Child,
    gather_event,
    log_dir,
    md_table,
    merge_counts,
    stop_all,
    summarize,
    wait_quiet,
)
from bench.wsclient import PATHS, BenchConn, liveclass_join

ROOM = "class"
PHASE = "F"
RETRIED = ("unavailable", "rate_limited")
#: node log lines worth counting (signaling/redis_store.py, signaling/node.py)
LOG_MARKS = ("acknowledged before a replica confirmed", "store unavailable", "Traceback")


class TeacherConn(BenchConn):
    """A BenchConn that also reports ``error`` frames answering a command (``ref`` set)."""

    on_error: Callable[[int, str, int], None] | None = None
    closed_ns = 0
    lost_reason = ""

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed_ns = time.monotonic_ns()
        self.lost_reason = repr(exc) if exc is not None else "closed"
        super().connection_lost(exc)

    def _liveclass_message(self, data: Any, now: int) -> None:
        msg = msgpack.unpackb(data)
        if msg.get("t") == "error" and msg.get("ref") is not None and self.on_error:
            retry_ms = int(msg.get("retry_after_ms") or 0)
            self.on_error(int(msg["ref"]), str(msg.get("code")), retry_ms)
        super()._liveclass_message(data, now)


class Teacher:
    """Sends seqs at a steady rate; resends a seq refused with ``unavailable`` after
    ``retry_after_ms``; records acks (seq -> monotonic ns) and errors."""

    def __init__(self, conn: TeacherConn) -> None:
        self.conn = conn
        conn.on_ack, conn.on_error = self.on_ack, self.on_error
        self.ref = 0
        self.pending: dict[int, int] = {}  # ref -> seq
        self.sent_ns: dict[int, int] = {}  # ref -> monotonic ns of the send
        self.acked: dict[int, int] = {}  # seq -> ack ns
        self.ack_times: list[int] = []
        self.double_acks = 0
        self.errors: dict[str, int] = {}
        self.resends = 0
        self.gave_up: set[int] = set()
        self.send_failures = 0
        self.retrying = True
        self._retries: set[asyncio.TimerHandle] = set()

    def send(self, seq: int) -> None:
        self.ref += 1
        self.pending[self.ref] = seq
        now = self.sent_ns[self.ref] = time.monotonic_ns()
        try:
            self.conn.send_chat(f"{PHASE}|{seq}|{now}", self.ref)
        except ConnectionError:
            self.send_failures += 1
            self.pending.pop(self.ref, None)
            self.gave_up.add(seq)

    def on_ack(self, ref: int) -> None:
        now = time.monotonic_ns()
        seq = self.pending.pop(ref, None)
        if seq is None:
            return
        if seq in self.acked:
            self.double_acks += 1
        self.acked.setdefault(seq, now)
        self.ack_times.append(now)

    def on_error(self, ref: int, code: str, retry_after_ms: int) -> None:
        seq = self.pending.pop(ref, None)
        if seq is None:
            return
        self.errors[code] = self.errors.get(code, 0) + 1
        if code not in RETRIED or not self.retrying:
            self.gave_up.add(seq)
            return
        loop = asyncio.get_running_loop()
        handle: asyncio.TimerHandle

        def resend() -> None:
            self._retries.discard(handle)
            self.resends += 1
            self.send(seq)

        handle = loop.call_later(max(retry_after_ms, 1) / 1000, resend)
        self._retries.add(handle)

    @property
    def outstanding(self) -> int:
        """Sends neither acknowledged nor refused yet, plus resends still waiting."""
        return len(self.pending) + len(self._retries)

    def stop_retrying(self) -> None:
        self.retrying = False
        for handle in self._retries:
            handle.cancel()
        self._retries.clear()

    async def steady(self, rate: float, stop: asyncio.Event) -> int:
        """Send seq 0, 1, ... at ``rate`` per second until ``stop``; returns how many."""
        t0, seq = time.monotonic(), 0
        while not stop.is_set():
            delay = t0 + seq / rate - time.monotonic()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                continue
            self.send(seq)
            seq += 1
        return seq


async def open_teacher(port: int, hello: bytes) -> TeacherConn:
    loop = asyncio.get_running_loop()
    url = f"ws://{HOST}:{port}{PATHS['liveclass']}"
    _, conn = await loop.create_connection(lambda: TeacherConn("liveclass", url, hello), HOST, port)
    try:
        await asyncio.wait_for(conn.joined, 20)
    except BaseException:
        conn.abort()
        raise
    return conn


def count_log_marks(dep: Deployment, tag: str) -> dict[str, int]:
    """How often each of LOG_MARKS appears in the nodes' logs."""
    out = dict.fromkeys(LOG_MARKS, 0)
    for k, node in enumerate(dep.nodes):  # named as bench.cluster_deploy.start_nodes names them
        path = log_dir() / f"{tag}-cluster-node{k + 1}-liveclass-{node.port}.log"
        with contextlib.suppress(OSError):
            for line in path.read_text(errors="replace").splitlines():
                for mark in LOG_MARKS:
                    if mark in line:
                        out[mark] += 1
    return out


def ms(ns: float) -> float:
    return round(ns / 1e6, 1)


def analyse(
    teacher: Teacher,
    traces: dict[str, dict[str, Any]],
    node_of: dict[str, int],
    killed_ns: int,
    promoted_ns: int,
    started_ns: int,
    stopped_ns: int,
) -> dict[str, Any]:
    """Losses, repeats, gaps and first deliveries of every student against the acked seqs."""
    acked = set(teacher.acked)
    lost_deliveries, students_losing, lost_seqs = 0, 0, set()
    repeats, extra_seqs = 0, set()
    gaps: dict[int, list[float]] = {}
    firsts: dict[int, list[float]] = {}
    gap_starts: list[float] = []
    for identity, t in traces.items():
        got: set[int] = set()
        for a, b in t["ranges"]:
            got.update(range(a, b + 1))
        lost = acked - got
        lost_deliveries += len(lost)
        students_losing += bool(lost)
        lost_seqs |= lost
        repeats += t["repeats"]
        extra_seqs |= got - acked
        node = node_of[identity]
        gaps.setdefault(node, []).append(t["gap_ns"] / 1e6)
        gap_starts.append((t["gap_from_ns"] - killed_ns) / 1e6)
        if t["first_after_ns"]:
            firsts.setdefault(node, []).append((t["first_after_ns"] - promoted_ns) / 1e6)
    after = [t for t in teacher.ack_times if t >= promoted_ns]
    before = [t for t in teacher.ack_times if t < killed_ns]
    sending_after = [t for t in after if t <= stopped_ns]
    ack_gap = max(
        (b - a for a, b in zip(teacher.ack_times, teacher.ack_times[1:], strict=False)), default=0
    )
    all_gaps = [g for v in gaps.values() for g in v]
    all_firsts = [f for v in firsts.values() for f in v]
    return {
        "acked": len(acked),
        "acked_before_kill": sum(1 for t in teacher.acked.values() if t < killed_ns),
        "lost_deliveries": lost_deliveries,
        "students_with_loss": students_losing,
        "lost_seqs": sorted(lost_seqs)[:50],
        "repeated_deliveries": repeats,
        "delivered_not_acked_seqs": sorted(extra_seqs)[:50],
        "delivered_not_acked": len(extra_seqs),
        "gap_ms": summarize(all_gaps),
        "gap_ms_by_node": {f"node{k + 1}": summarize(v) for k, v in sorted(gaps.items())},
        "gap_start_after_kill_ms": summarize(gap_starts),
        "promotion_to_first_delivery_ms": summarize(all_firsts),
        "promotion_to_first_delivery_ms_by_node": {
            f"node{k + 1}": summarize(v) for k, v in sorted(firsts.items())
        },
        "students_without_delivery_after_promotion": len(traces) - len(all_firsts),
        "promotion_to_first_ack_ms": ms(after[0] - promoted_ns) if after else None,
        "longest_ack_gap_ms": ms(ack_gap),
        "acks_per_s_before_kill": round(len(before) / ((killed_ns - started_ns) / 1e9), 1),
        "acks_per_s_after_promotion": round(
            len(sending_after) / max(1e-9, (stopped_ns - promoted_ns) / 1e9), 1
        ),
        "last_ack_after_stop_ms": ms(max(0, teacher.ack_times[-1] - stopped_ns))
        if teacher.ack_times
        else None,
        "errors": teacher.errors,
        "resends": teacher.resends,
        "double_acks": teacher.double_acks,
        "unanswered": len(teacher.pending),
        "unanswered_sent_after_kill_ms": sorted(
            ms(teacher.sent_ns[ref] - killed_ns) for ref in teacher.pending
        ),
        "unanswered_seqs": sorted(teacher.pending.values()),
        "gave_up": len(teacher.gave_up - acked),
        "send_failures": teacher.send_failures,
    }


async def one_run(index: int, args: argparse.Namespace) -> dict[str, Any]:
    n = args.n
    print(f"cluster failover: run {index + 1}, N={n}, {args.rate:g} messages/s ...", flush=True)
    out: dict[str, Any] = {"server": CLUSTER, "n": n, "run": index + 1, "rate": args.rate}
    tag = f"cfailover-r{index + 1}"
    placed: list[tuple[int, Child]] = []
    conn: TeacherConn | None = None
    async with deploy(CLUSTER, args.nodes, LIVECLASS_ARGS, tag=tag) as dep:
        cluster = dep.cluster
        assert cluster is not None
        out["label"] = dep.label
        try:
            master = await cluster.owner_of(f"room:{{{ROOM}}}:log")
            replica = await cluster.replica_of(master)
            out["master_port"], out["replica_port"] = master, replica
            hello = liveclass_join(dep.nodes[0].token("teacher", "teacher", ROOM), ROOM)
            conn = await open_teacher(dep.nodes[0].port, hello)
            teacher = Teacher(conn)
            students = [(f"s{i:05d}", ROOM) for i in range(n)]
            node_of = {ident: i % len(dep.nodes) for i, (ident, _) in enumerate(students)}
            base = {
                "kind": "liveclass",
                "concurrency": 32,
                "retries": 2,
                "timeout_s": 20,
                "deadline_s": args.worker_deadline,
                "trace": PHASE,
            }
            placed = await dep.start_workers(args.workers, students, base, tag=tag)
            workers = [w for _, w in placed]
            connected = await gather_event(workers, "connected", timeout=120)
            out["connected"] = sum(c["ok"] for c in connected)
            out["connect_failures"] = merge_counts([c["failures"] for c in connected])
            await asyncio.sleep(1.0)
            out["before_phase"] = await wait_quiet(30, extra_pids=dep.extra_pids())

            stop = asyncio.Event()
            meter = Meter(dep, workers)
            started_ns = time.monotonic_ns()
            sending = asyncio.create_task(teacher.steady(args.rate, stop))
            await asyncio.sleep(args.before)
            killed_ns = await cluster.kill(master)
            promoted_ns = await cluster.wait_master(replica, args.promotion_timeout)
            m_promoted = await asyncio.to_thread(dep.nodes[0].metrics)
            out["kill_to_promotion_s"] = round((promoted_ns - killed_ns) / 1e9, 2)
            print(f"  promoted {out['kill_to_promotion_s']} s after the kill", flush=True)
            if args.restart_after is not None and args.restart_after < args.after:
                await asyncio.sleep(args.restart_after)
                await cluster.restart(master)
                out["restarted_after_promotion_s"] = round(
                    (time.monotonic_ns() - promoted_ns) / 1e9, 2
                )
            await asyncio.sleep(args.after - out.get("restarted_after_promotion_s", 0.0))
            stop.set()
            out["sent"] = await sending
            stopped_ns = time.monotonic_ns()
            out["cpu"] = meter.read()  # over the sending: before, outage and after
            m_stopped = await asyncio.to_thread(dep.nodes[0].metrics)
            appends = {
                k: m_stopped.get(f"liveclass_append_seconds_{k}", 0.0)
                - m_promoted.get(f"liveclass_append_seconds_{k}", 0.0)
                for k in ("sum", "count")
            }
            out["node1_appends_after_promotion"] = int(appends["count"])
            out["node1_append_ms_after_promotion"] = round(
                1000 * appends["sum"] / max(1.0, appends["count"]), 1
            )
            deadline = time.monotonic() + args.settle
            while time.monotonic() < deadline:
                if not teacher.outstanding:
                    break
                await asyncio.sleep(0.05)
            teacher.stop_retrying()
            res = await gather_event(
                workers,
                "phase",
                args.settle + 10,
                {"cmd": "collect", "phase": PHASE, "messages": len(teacher.acked), "timeout": 10},
            )
            out["deliveries"] = sum(r["received"] for r in res)
            traced = await gather_event(
                workers, "trace", 60, {"cmd": "trace", "after_ns": promoted_ns}
            )
            traces = {k: v for t in traced for k, v in t["students"].items()}
            out.update(
                analyse(teacher, traces, node_of, killed_ns, promoted_ns, started_ns, stopped_ns)
            )
            status = await gather_event(workers, "status", 10, {"cmd": "status"})
            out["still_open"] = sum(s["open"] for s in status)
            out["client_errors"] = merge_counts([s["errors"] for s in status])
            out["close_codes"] = merge_counts([s["close_codes"] for s in status])
            out["teacher_open"] = not conn.closed
            out["teacher_close_code"] = conn.close_code
            out["teacher_lost_reason"] = conn.lost_reason
            out["teacher_closed_after_kill_s"] = (
                round((conn.closed_ns - killed_ns) / 1e9, 2) if conn.closed_ns else None
            )
            out["teacher_error_frames"] = conn.errors  # with or without a ref
            out["node_log_marks"] = count_log_marks(dep, tag)
        finally:
            if conn is not None:
                conn.abort()
            await stop_all([w for _, w in placed])
    print(
        f"  run {index + 1}: acked {out['acked']}, lost {out['lost_deliveries']}, repeated "
        f"{out['repeated_deliveries']}, unavailable {out['errors'].get('unavailable', 0)}; gap "
        f"max {out['gap_ms']['max']:.0f} ms; promotion -> first delivery p50 "
        f"{out['promotion_to_first_delivery_ms']['p50']:.0f} ms",
        flush=True,
    )
    return out


def report(runs: list[dict[str, Any]]) -> str:
    rows = []
    for r in runs:
        if "gap_ms" not in r:
            rows.append([r.get("run"), "", r.get("n"), r.get("error", "failed")] + [""] * 16)
            continue
        first = r["promotion_to_first_delivery_ms"]
        rows.append(
            [
                r["run"],
                f"{r['restarted_after_promotion_s']} s after promotion"
                if "restarted_after_promotion_s" in r
                else "no",
                f"{r['connected']:,}/{r['n']:,}",
                r["kill_to_promotion_s"],
                f"{r['gap_ms']['p50']:,.0f} / {r['gap_ms']['max']:,.0f}",
                f"{first['p50']:,.0f} / {first['max']:,.0f}",
                r["promotion_to_first_ack_ms"],
                f"{r['sent']:,} / {r['acked']:,}",
                r["errors"].get("unavailable", 0),
                ", ".join(f"{k} {v}" for k, v in r["errors"].items() if k != "unavailable") or "0",
                f"{r['acks_per_s_before_kill']:g} / {r['acks_per_s_after_promotion']:g}",
                r["node1_append_ms_after_promotion"],
                round((r["last_ack_after_stop_ms"] or 0) / 1000, 1),
                r["lost_deliveries"],
                r["repeated_deliveries"],
                r["delivered_not_acked"],
                r["unanswered"] + r["gave_up"],
                "open"
                if r.get("teacher_open", True)
                else f"closed ({r.get('teacher_close_code')}) "
                f"{r.get('teacher_closed_after_kill_s')} s after the kill",
                r["cpu"]["other_cpu_pct"],
            ]
        )
    return md_table(
        [
            "run",
            "killed master restarted",
            "joined",
            "kill -> promotion s",
            "gap p50 / max ms (per student)",
            "promotion -> first delivery p50 / max ms",
            "promotion -> first ack ms",
            "sent / acked",
            "unavailable errors",
            "other errors",
            "acks/s before kill / after promotion",
            "append ms after promotion (node 1 mean)",
            "last ack, s after sending stopped",
            "acked deliveries lost",
            "repeated deliveries",
            "delivered, not acked",
            "never answered",
            "teacher's connection at the end",
            "other procs CPU %",
        ],
        rows,
    )


def goals(runs: list[dict[str, Any]]) -> list[str]:
    done = [r for r in runs if "gap_ms" in r]
    if not done:
        return ["no failover run completed"]
    lost = sum(r["lost_deliveries"] for r in done)
    repeated = sum(r["repeated_deliveries"] for r in done)
    verdict = "MET" if lost == 0 and repeated == 0 else "MISSED"
    return [
        f"acked events lost over {len(done)} runs: {lost} deliveries; repeated: {repeated} "
        f"(goal 0 and 0): {verdict}",
        "promotion -> first delivery (max over students), per run: "
        + ", ".join(f"{r['promotion_to_first_delivery_ms']['max']:,.0f} ms" for r in done),
        "longest gap at a student, per run: "
        + ", ".join(f"{r['gap_ms']['max']:,.0f} ms" for r in done),
    ]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--n", type=int, default=2000, help="students")
    p.add_argument("--nodes", type=int, default=2, help="liveclass nodes")
    p.add_argument("--workers", type=int, default=4, help="receiver processes (split over nodes)")
    p.add_argument("--rate", type=float, default=20.0, help="teacher's messages per second")
    p.add_argument("--before", type=float, default=5.0, help="sending before the kill (s)")
    p.add_argument("--after", type=float, default=10.0, help="sending after the promotion (s)")
    p.add_argument(
        "--settle", type=float, default=60.0, help="then wait at most this for all answers (s)"
    )
    p.add_argument(
        "--restart-after",
        type=float,
        default=None,
        help="restart the killed master this long after the promotion (s; default: never)",
    )
    p.add_argument("--promotion-timeout", type=float, default=30.0, help="wait for promotion (s)")
    p.add_argument("--runs", type=int, default=3, help="failovers, each on a fresh deployment")
    p.add_argument("--worker-deadline", type=float, default=400.0, help="workers exit after (s)")
    p.add_argument("--max-seconds", type=float, default=900.0, help="hard limit for the run")


async def body(args: argparse.Namespace, runs: list[dict[str, Any]]) -> None:
    for index in range(args.runs):
        quiet = await wait_quiet()
        try:
            result = await one_run(index, args)
        except Exception as exc:
            print(f"  run {index + 1} FAILED: {exc!r}", flush=True)
            result = {"server": CLUSTER, "n": args.n, "run": index + 1, "error": repr(exc)}
        result["before_run"] = quiet
        runs.append(result)
