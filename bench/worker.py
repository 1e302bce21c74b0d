"""A receiver worker process: holds a share of the simulated students in one uvloop event loop.

Started by the benchmark orchestrators as ``python -m bench.worker '<json config>'``; it talks
JSON lines: events on stdout, commands on stdin. It exits on ``quit``, when stdin closes (the
orchestrator died) or at its own deadline, whichever comes first, aborting every connection.

Config keys: ``kind`` (liveclass | socketio), ``port``, ``students`` ([identity, room] pairs),
``secret`` (liveclass token secret, kid ``bench``), ``ws_only`` (liveclass: open the WebSocket but
do not join), ``concurrency`` (connections opened at once), ``retries`` (attempts after a failed
connect or join, default 0), ``timeout_s`` (per attempt, default 30), ``schedule`` (optional:
per-student start offsets in seconds after ``start_ns``, a CLOCK_MONOTONIC time), ``deadline_s``,
``trace`` (optional: a phase whose deliveries are kept per student).

Events: ``{"ev": "connected", ok, failed, failures, retried, join_us}`` once every student tried;
``{"ev": "phase", phase, expected, received, first_ns, last_ns, lat_us}`` answering ``collect``;
``{"ev": "status", open, closed, frames, errors, close_codes}`` answering ``status``;
``{"ev": "trace", students: {identity: Trace.summary}}`` answering ``trace{after_ns}``.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import uvloop

from bench.wsclient import LIVECLASS, BenchConn, liveclass_join, open_conn, socketio_auth


@dataclass(slots=True)
class PhaseStats:
    count: int = 0
    first_ns: int = 0
    last_ns: int = 0
    lat_us: list[int] = field(default_factory=list)


@dataclass(slots=True)
class Trace:
    """One student's deliveries in the traced phase: sequence numbers and arrival times (ns)."""

    seqs: list[int] = field(default_factory=list)
    arrivals_ns: list[int] = field(default_factory=list)

    def summary(self, after_ns: int) -> dict[str, Any]:
        """Unique seqs as ``[first, last]`` ranges, repeats, the longest silence between two
        deliveries (ns, with its ends) and the first arrival at or after ``after_ns``."""
        unique = sorted(set(self.seqs))
        ranges: list[list[int]] = []
        for seq in unique:
            if ranges and ranges[-1][1] == seq - 1:
                ranges[-1][1] = seq
            else:
                ranges.append([seq, seq])
        gap, gap_from, gap_to = 0, 0, 0
        for a, b in zip(self.arrivals_ns, self.arrivals_ns[1:], strict=False):
            if b - a > gap:
                gap, gap_from, gap_to = b - a, a, b
        return {
            "received": len(self.seqs),
            "ranges": ranges,
            "repeats": len(self.seqs) - len(unique),
            "gap_ns": gap,
            "gap_from_ns": gap_from,
            "gap_to_ns": gap_to,
            "first_after_ns": next((t for t in self.arrivals_ns if t >= after_ns), 0),
            "last_ns": self.arrivals_ns[-1] if self.arrivals_ns else 0,
        }


class Receiver:
    """Per-phase counts and latencies of every student's deliveries; with ``trace`` (a phase
    name) also each student's own deliveries in that phase (bench.cluster's failover)."""

    def __init__(self, trace: str | None = None) -> None:
        self.phases: dict[str, PhaseStats] = {}
        self.trace = trace
        self.traces: dict[str, Trace] = {}

    def sink_for(self, identity: str) -> Callable[[str, int], None]:
        """The sink of one student's connection."""
        if self.trace is None:
            return self.sink
        trace = self.traces[identity] = Trace()
        prefix = self.trace + "|"

        def sink(text: str, recv_ns: int) -> None:
            self.sink(text, recv_ns)
            if text.startswith(prefix):
                trace.seqs.append(int(text.split("|", 2)[1]))
                trace.arrivals_ns.append(recv_ns)

        return sink

    def sink(self, text: str, recv_ns: int) -> None:
        phase, _seq, sent = text.split("|")
        st = self.phases.get(phase)
        if st is None:
            st = self.phases[phase] = PhaseStats(first_ns=recv_ns)
        st.count += 1
        st.last_ns = recv_ns
        st.lat_us.append((recv_ns - int(sent)) // 1000)


def emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def raise_nofile() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def hellos(cfg: dict[str, Any]) -> list[bytes | None]:
    """The join frame (or Socket.IO auth) of every student, prepared before any timing starts."""
    students = cfg["students"]
    if cfg["kind"] != LIVECLASS:
        return [socketio_auth(room, ident, "student") for ident, room in students]
    if cfg.get("ws_only"):
        return [None] * len(students)
    from rooms import Role
    from signaling import Grants, Keyring, mint

    keyring = Keyring({"bench": cfg["secret"].encode()}, "bench")
    return [
        liveclass_join(
            mint(keyring, identity=i, name=i, grants=Grants(r, Role.STUDENT), ttl_s=3600), r
        )
        for i, r in students
    ]


async def connect_all(cfg: dict[str, Any], rx: Receiver) -> list[BenchConn]:
    kind, port = cfg["kind"], int(cfg["port"])
    frames = hellos(cfg)
    sinks = [rx.sink_for(identity) for identity, _room in cfg["students"]]
    conns: list[BenchConn] = []
    join_us: list[int] = []
    failures: dict[str, int] = {}
    retried: dict[str, int] = {}
    retries = int(cfg.get("retries", 0))
    timeout = float(cfg.get("timeout_s", 30.0))
    sem = asyncio.Semaphore(int(cfg.get("concurrency", 64)))
    schedule: list[float] | None = cfg.get("schedule")
    start_ns = int(cfg.get("start_ns") or time.monotonic_ns())

    async def one(i: int) -> None:
        if schedule is not None:
            delay = (start_ns + int(schedule[i] * 1e9) - time.monotonic_ns()) / 1e9
            if delay > 0:
                await asyncio.sleep(delay)
        for attempt in range(retries + 1):
            async with sem:
                try:
                    conn, ns = await open_conn(kind, port, frames[i], sinks[i], timeout=timeout)
                except Exception as exc:
                    key = type(exc).__name__ + ": " + str(exc)[:80]
                    if attempt == retries:
                        failures[key] = failures.get(key, 0) + 1
                        return
                    retried[key] = retried.get(key, 0) + 1
                    continue
            conns.append(conn)
            join_us.append(ns // 1000)
            return

    await asyncio.gather(*(one(i) for i in range(len(frames))))
    emit(
        {
            "ev": "connected",
            "ok": len(conns),
            "failed": sum(failures.values()),
            "failures": failures,
            "retried": retried,
            "join_us": join_us,
        }
    )
    return conns


async def collect(rx: Receiver, conns: list[BenchConn], cmd: dict[str, Any]) -> None:
    phase = str(cmd["phase"])
    expected = len(conns) * int(cmd["messages"])
    deadline = time.monotonic() + float(cmd.get("timeout", 30))
    while time.monotonic() < deadline:
        st = rx.phases.get(phase)
        if st is not None and st.count >= expected:
            break
        await asyncio.sleep(0.02)
    st = rx.phases.get(phase) or PhaseStats()
    emit(
        {
            "ev": "phase",
            "phase": phase,
            "expected": expected,
            "received": st.count,
            "first_ns": st.first_ns,
            "last_ns": st.last_ns,
            "lat_us": st.lat_us,
        }
    )


def trace(rx: Receiver, cmd: dict[str, Any]) -> None:
    """Each traced student's deliveries, summarized (``Trace.summary``)."""
    after_ns = int(cmd.get("after_ns", 0))
    emit(
        {
            "ev": "trace",
            "students": {i: t.summary(after_ns) for i, t in rx.traces.items()},
        }
    )


def status(conns: list[BenchConn]) -> None:
    errors: dict[str, int] = {}
    codes: dict[str, int] = {}
    for c in conns:
        for k, v in c.errors.items():
            errors[k] = errors.get(k, 0) + v
        if c.closed:
            codes[str(c.close_code)] = codes.get(str(c.close_code), 0) + 1
    emit(
        {
            "ev": "status",
            "open": sum(1 for c in conns if not c.closed),
            "closed": sum(1 for c in conns if c.closed),
            "frames": sum(c.frames for c in conns),
            "reads": sum(c.reads for c in conns),
            "errors": errors,
            "close_codes": codes,
        }
    )


async def main(cfg: dict[str, Any]) -> None:
    raise_nofile()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    rx = Receiver(cfg.get("trace"))
    conns: list[BenchConn] = []
    try:
        async with asyncio.timeout(float(cfg.get("deadline_s", 300))):
            conns = await connect_all(cfg, rx)
            while line := await reader.readline():
                cmd = json.loads(line)
                if cmd["cmd"] == "collect":
                    await collect(rx, conns, cmd)
                elif cmd["cmd"] == "status":
                    status(conns)
                elif cmd["cmd"] == "trace":
                    trace(rx, cmd)
                elif cmd["cmd"] == "quit":
                    break
    except TimeoutError:
        print("worker: deadline reached, exiting", file=sys.stderr)
    finally:
        for c in conns:
            c.abort()


if __name__ == "__main__":
    uvloop.run(main(json.loads(sys.argv[1])))
    os._exit(0)
