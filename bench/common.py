"""Shared pieces of the benchmarks: servers under test, worker processes, statistics, reports.

Every process a benchmark starts runs in its own process group and is registered here; the
orchestrator stops it with SIGTERM then SIGKILL to the whole group, and ``run`` kills whatever is
left when the benchmark ends, fails, hits its time limit or is interrupted. All traffic is to
127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import importlib.metadata
import json
import math
import os
import platform
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import uvloop

from bench.wsclient import LIVECLASS, SOCKETIO

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
RESULTS = BENCH / "results"
NODE_PEER = BENCH / "peers" / "socketio_node"
PY_PEER = BENCH / "peers" / "socketio_python" / "server.py"
SERVERS = ("liveclass", "python-socketio", "node-socketio")
HOST = "127.0.0.1"

_CHILDREN: set[Child] = set()


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def log_dir() -> Path:
    path = RESULTS / "logs"
    path.mkdir(parents=True, exist_ok=True)
    return path


# -- child processes ---------------------------------------------------------------------------


class Child:
    """A subprocess in its own session/process group; ``stop()`` always reaps the group."""

    def __init__(self, proc: asyncio.subprocess.Process, name: str) -> None:
        self.proc = proc
        self.name = name
        self.pid = proc.pid
        _CHILDREN.add(self)

    @classmethod
    async def spawn(
        cls,
        name: str,
        cmd: Sequence[str],
        *,
        cwd: Path = REPO,
        env: dict[str, str] | None = None,
        log: Path | None = None,
        stdout_pipe: bool = True,
    ) -> Child:
        logf = (log or (log_dir() / f"{name}.log")).open("ab")
        try:
            proc = await asyncio.create_subprocess_exec(
                *cmd,
                cwd=cwd,
                env=env,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE if stdout_pipe else logf,
                stderr=logf,
                start_new_session=True,
                limit=1 << 28,
            )
        finally:
            logf.close()
        return cls(proc, name)

    async def readline(self, timeout: float) -> str:
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        if not line:
            raise RuntimeError(f"{self.name} exited ({self.proc.returncode}); see its log")
        return line.decode()

    async def read_event(self, ev: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            obj = json.loads(await self.readline(max(0.01, deadline - time.monotonic())))
            if obj.get("ev") == ev:
                return obj

    def send(self, obj: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(obj) + "\n").encode())

    def _signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    async def stop(self, grace: float = 5.0) -> None:
        """Close stdin, then SIGTERM and finally SIGKILL the process group."""
        try:
            if self.proc.stdin is not None and not self.proc.stdin.is_closing():
                self.proc.stdin.close()
            if self.proc.returncode is None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.proc.wait(), min(grace, 1.0))
            if self.proc.returncode is None:
                self._signal_group(signal.SIGTERM)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.proc.wait(), grace)
        finally:
            self._signal_group(signal.SIGKILL)
            if self.proc.returncode is None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.proc.wait(), 5)
            _CHILDREN.discard(self)


def busy_cpu_s() -> float:
    """CPU seconds all cores spent busy (user, nice, system, irq, softirq) since boot."""
    t = psutil.cpu_times()
    return float(t.user + t.nice + t.system + t.irq + t.softirq)


def own_cpu_s() -> float:
    """CPU seconds of this process (the orchestrator and, in fanout, the sender)."""
    t = psutil.Process().cpu_times()
    return float(t.user + t.system)


async def wait_quiet(
    max_wait_s: float = 90.0, threshold_pct: float = 15.0, extra_pids: Sequence[int] = ()
) -> dict[str, float]:
    """Wait (up to ``max_wait_s``) until processes other than ours use under ``threshold_pct``
    of one core for two consecutive seconds: the machine may be shared with other jobs.
    ``extra_pids`` are ours too though not children (daemonized Redis servers).

    Returns the seconds waited and the last one-second sample of other processes' CPU (%).
    """
    started = time.monotonic()
    quiet = 0
    other = 0.0

    def mine_s() -> float:
        return sum(child_cpu_s(c) for c in list(_CHILDREN)) + sum(map(pid_cpu_s, extra_pids))

    while time.monotonic() - started < max_wait_s:
        busy0, own0 = busy_cpu_s(), own_cpu_s()
        mine0 = mine_s()
        t0 = time.monotonic()
        await asyncio.sleep(1.0)
        mine = own_cpu_s() - own0 + mine_s() - mine0
        other = 100 * (busy_cpu_s() - busy0 - mine) / (time.monotonic() - t0)
        quiet = quiet + 1 if other < threshold_pct else 0
        if quiet >= 2:
            break
    waited = time.monotonic() - started
    if other >= threshold_pct:
        print(f"bench: machine still busy ({other:.0f}% of a core in other processes)", flush=True)
    return {"waited_s": round(waited, 1), "other_cpu_pct": round(other, 1)}


def child_cpu_s(child: Child) -> float:
    return pid_cpu_s(child.pid)


def pid_cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (0 once it is gone)."""
    try:
        t = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return 0.0
    return float(t.user + t.system)


def kill_all_children() -> None:
    """Last resort: SIGKILL every registered process group (sync, safe in finally/atexit)."""
    for child in list(_CHILDREN):
        child._signal_group(signal.SIGKILL)
        _CHILDREN.discard(child)


# -- servers under test ------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    kind: str
    port: int
    child: Child
    secret: str = ""
    data_dir: Path | None = None
    ps: psutil.Process = field(init=False)

    def __post_init__(self) -> None:
        self.ps = psutil.Process(self.child.pid)

    def cpu_s(self) -> float:
        t = self.ps.cpu_times()
        return float(t.user + t.system)

    def rss(self) -> int:
        return int(self.ps.memory_info().rss)

    def metrics(self) -> dict[str, float]:
        """liveclass's /metrics as {sample name (with labels): value}."""
        with urllib.request.urlopen(f"http://{HOST}:{self.port}/metrics", timeout=5) as r:
            text = r.read().decode()
        out: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                key, _, value = line.rpartition(" ")
                out[key] = float(value)
        return out

    def token(self, identity: str, role: str, room: str) -> str:
        from rooms import Role
        from signaling import Grants, Keyring, mint

        keyring = Keyring({"bench": self.secret.encode()}, "bench")
        return mint(
            keyring, identity=identity, name=identity, grants=Grants(room, Role(role)), ttl_s=3600
        )

    async def stop(self) -> None:
        try:
            await self.child.stop(grace=10.0)
        finally:
            if self.data_dir is not None:
                shutil.rmtree(self.data_dir, ignore_errors=True)


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}/readyz", timeout=1) as r:
            return bool(r.status == 200)
    except OSError:
        return False


def ensure_node_peer(peer: Path = NODE_PEER, marker: str = "socket.io") -> None:
    """``npm ci`` a Node peer once (its versions pinned in its package-lock.json); ``marker`` is a
    package whose presence in node_modules means the peer is installed."""
    if (peer / "node_modules" / marker / "package.json").exists():
        return
    print(f"bench: npm ci in {peer.relative_to(REPO)} (first run)", file=sys.stderr)
    subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=peer,
        check=True,
        timeout=300,
    )


async def start_server(
    name: str, liveclass_args: Sequence[str] = (), tag: str = "", secret: str | None = None
) -> Server:
    """Start a fresh server process on a free 127.0.0.1 port and wait until it serves.

    ``secret``: liveclass's token secret (default: a fresh one); nodes of one deployment share it.
    """
    port = free_port()
    log = log_dir() / f"{tag or 'server'}-{name}-{port}.log"
    if name == "liveclass":
        secret = secret or secrets.token_urlsafe(32)
        data_dir = Path(tempfile.mkdtemp(prefix="liveclass-bench-"))
        env = {**os.environ, "LIVECLASS_SECRETS": f"bench:{secret}"}
        cmd = [sys.executable, "-m", "liveclass", "serve", "--host", HOST, "--port", str(port)]
        cmd += ["--data-dir", str(data_dir), *liveclass_args]
        child = await Child.spawn(name, cmd, env=env, log=log, stdout_pipe=False)
        server = Server(name, LIVECLASS, port, child, secret, data_dir)
        deadline = time.monotonic() + 20
        while True:
            if await asyncio.to_thread(_ready, port):
                return server
            if child.proc.returncode is not None or time.monotonic() > deadline:
                await server.stop()
                raise RuntimeError(f"liveclass did not start; see {log}")
            await asyncio.sleep(0.05)
    if name == "python-socketio":
        cmd = [sys.executable, str(PY_PEER), str(port)]
        child = await Child.spawn(name, cmd, log=log)
    elif name == "node-socketio":
        ensure_node_peer()
        child = await Child.spawn(name, ["node", "server.js", str(port)], cwd=NODE_PEER, log=log)
    else:
        raise ValueError(f"unknown server {name!r}; choose from {', '.join(SERVERS)}")
    server = Server(name, SOCKETIO, port, child)
    try:
        line = await child.readline(20)
        if not line.startswith("ready"):
            raise RuntimeError(f"{name} said {line!r}")
    except BaseException:
        await server.stop()
        raise
    return server


# -- receiver workers --------------------------------------------------------------------------


async def start_workers(
    n_workers: int,
    students: Sequence[tuple[str, str]],
    base: dict[str, Any],
    schedule: Sequence[float] | None = None,
    tag: str = "worker",
) -> list[Child]:
    """Split ``students`` ([identity, room]) over ``n_workers`` ``bench.worker`` processes."""
    workers: list[Child] = []
    for w in range(n_workers):
        share = list(students[w::n_workers])
        cfg = {**base, "students": share}
        if schedule is not None:
            cfg["schedule"] = list(schedule[w::n_workers])
        cmd = [sys.executable, "-m", "bench.worker", json.dumps(cfg)]
        workers.append(await Child.spawn(f"{tag}{w}", cmd, log=log_dir() / f"{tag}.log"))
    return workers


async def gather_event(
    workers: Sequence[Child], ev: str, timeout: float, cmd: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Optionally send ``cmd`` to every worker, then read one ``ev`` event from each."""
    if cmd is not None:
        for w in workers:
            w.send(cmd)
    return list(await asyncio.gather(*(w.read_event(ev, timeout) for w in workers)))


async def stop_all(children: Sequence[Child]) -> None:
    for c in children:
        with contextlib.suppress(Exception):
            c.send({"cmd": "quit"})
    await asyncio.gather(*(c.stop(grace=5.0) for c in children), return_exceptions=True)


# -- statistics --------------------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an ascending sequence (q in 0..100); nan when empty."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return float(sorted_values[min(rank, len(sorted_values)) - 1])


def summarize(values: Sequence[float]) -> dict[str, float]:
    v = sorted(values)
    return {
        "n": len(v),
        "p50": percentile(v, 50),
        "p90": percentile(v, 90),
        "p99": percentile(v, 99),
        "max": float(v[-1]) if v else math.nan,
        "mean": sum(v) / len(v) if v else math.nan,
    }


# -- reports -----------------------------------------------------------------------------------


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def node_pkg_version(name: str, peer: Path = NODE_PEER) -> str:
    """The installed version of package ``name`` in a Node peer's node_modules."""
    path = peer / "node_modules" / name / "package.json"
    return str(json.loads(path.read_text())["version"]) if path.exists() else "not installed"


def environment() -> dict[str, Any]:
    """The machine and the software versions, for the results file and docs/benchmarks.md."""
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    distro = ""
    with contextlib.suppress(OSError):
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                distro = line.split("=", 1)[1].strip('"')
    try:
        node = subprocess.run(
            ["node", "--version"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except OSError:
        node = "not installed"

    def git(*argv: str) -> str:
        try:
            return subprocess.run(
                ["git", *argv], cwd=REPO, capture_output=True, text=True, timeout=10
            ).stdout.strip()
        except OSError:
            return ""

    dirty = git("status", "--porcelain", "--", ".", ":!bench", ":!docs/benchmarks.md")
    return {
        "git": git("rev-parse", "--short", "HEAD") + (" + uncommitted changes" if dirty else ""),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "ram_gib": round(mem_kb / 1024 / 1024, 1),
        "os": distro,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "versions": {
            "liveclass": _version("liveclass"),
            "websockets": _version("websockets"),
            "uvloop": _version("uvloop"),
            "msgpack": _version("msgpack"),
            "python-socketio": _version("python-socketio"),
            "python-engineio": _version("python-engineio"),
            "aiohttp": _version("aiohttp"),
            "node": node,
            "socket.io": node_pkg_version("socket.io"),
            "engine.io": node_pkg_version("engine.io"),
            "ws": node_pkg_version("ws"),
        },
        "command": " ".join([".venv/bin/python", *sys.orig_argv[1:]]),
    }


def write_results(bench: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"{bench}-{stamp}.json"
    path.write_text(json.dumps(data, indent=1))
    latest = RESULTS / f"{bench}-latest.json"
    latest.write_text(json.dumps(data, indent=1))
    return path


def finish(
    bench: str,
    args: Any,
    data: dict[str, Any],
    goal_lines: list[str],
    report_text: str,
    started: float,
) -> None:
    """Write a run's results (``data`` plus params, goals and wall time) and print its report."""
    data = {
        "bench": bench,
        **data,
        "params": {k: v for k, v in vars(args).items() if k != "max_seconds"},
        "goals": goal_lines,
        "wall_s": round(time.monotonic() - started, 1),
    }
    path = write_results(bench, data)
    print()
    print(report_text)
    print()
    for line in goal_lines:
        print(line)
    print(f"\nresults: {path} ({data['wall_s']} s)")


def md_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(v: Any) -> str:
        if isinstance(v, float):
            if math.isnan(v):
                return "n/a"
            return f"{v:,.1f}" if abs(v) < 100 else f"{v:,.0f}"
        if isinstance(v, int):
            return f"{v:,}"
        return str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + " --- |" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def merge_counts(dicts: Sequence[dict[str, int]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for d in dicts:
        for k, v in d.items():
            out[k] = out.get(k, 0) + v
    return out


def names_of(choices: Sequence[str]) -> Callable[[str], list[str]]:
    """An argparse type: a comma-separated list of names, each one of ``choices``."""

    def parse(text: str) -> list[str]:
        names = [name.strip() for name in text.split(",") if name.strip()]
        unknown = [name for name in names if name not in choices]
        if unknown:
            raise argparse.ArgumentTypeError(
                f"unknown {', '.join(map(repr, unknown))}; choose from {', '.join(choices)}"
            )
        return names

    return parse


def int_list(text: str) -> list[int]:
    return [int(x.replace("_", "")) for x in text.split(",") if x.strip()]


async def run_sides(
    sizes: Sequence[int],
    servers: Sequence[str],
    one_run: Callable[[str, int], Coroutine[Any, Any, dict[str, Any]]],
    other_load: Callable[[dict[str, Any]], float],
    *,
    size_key: str,
    seed: int,
    noise_pct: float,
    noisy_retries: int,
    quiet_wait_s: float = 90.0,
) -> list[dict[str, Any]]:
    """Run every server at every size, servers in a seeded shuffled order per size, each after
    the machine is quiet; a run during which other processes used over ``noise_pct`` of a core
    is run again (up to ``noisy_retries`` times). A failed run is recorded with its error."""
    rng = random.Random(seed)
    runs: list[dict[str, Any]] = []
    for size in sizes:
        order = list(servers)
        rng.shuffle(order)
        for name in order:
            for attempt in range(1 + noisy_retries):
                quiet = await wait_quiet(quiet_wait_s)
                try:
                    result = await one_run(name, size)
                except Exception as exc:
                    print(f"  {name} {size_key}={size} FAILED: {exc!r}", flush=True)
                    result = {"server": name, size_key: size, "error": repr(exc)}
                result["before_run"] = quiet
                result["attempt"] = attempt + 1
                noise = other_load(result)
                if noise <= noise_pct or attempt == noisy_retries:
                    break
                print(f"  other processes used {noise:.0f}% CPU: running again", flush=True)
            runs.append(result)
    return runs


def run(main: Callable[[], Coroutine[Any, Any, None]], max_seconds: float) -> None:
    """Run ``main`` on uvloop, bounded by ``max_seconds``; every child process is killed after."""

    async def bounded() -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        try:
            async with asyncio.timeout(max_seconds):
                await main()
        finally:
            for child in list(_CHILDREN):
                with contextlib.suppress(Exception):
                    await child.stop(grace=3.0)

    try:
        uvloop.run(bounded())
    except TimeoutError:
        print(f"bench: stopped at the {max_seconds:.0f} s limit", file=sys.stderr)
        raise SystemExit(2) from None
    except asyncio.CancelledError:
        print("bench: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    finally:
        kill_all_children()
