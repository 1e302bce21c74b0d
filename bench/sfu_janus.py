"""Janus 1.1.2 (the C reference of ``bench.sfu``) in a network namespace the bench creates.

Janus's ICE agent (libnice) never offers loopback candidates, and the bench's traffic must stay on
loopback or in a namespace it made. So each Janus run gets a namespace ``lcsfu-<pid>-<k>`` with
``lo`` up and a veth pair whose end ``jv0`` holds 127.0.1.1/32; Janus runs inside it with
``-E jv0`` (ICE only on that interface) and its HTTP API on 127.0.0.1 of the namespace; the Janus
side's media peers run inside it too (``ip netns exec``), gathering on 127.0.1.1. Nothing leaves
the namespace. It is deleted when the run stops, at exit, and (if a killed bench left one) by the
next run, which stops what still runs in ``lcsfu-<pid>-*`` namespaces whose pid is gone and
removes them.

The configuration is ``bench/peers/janus/*.jcfg`` with its ``@NAME@`` placeholders filled in: only
the VideoRoom plugin and the HTTP transport are loaded; one room, VP8, no bitrate cap.

Install: ``apt-get install -y --no-install-recommends janus`` (Debian 12: 1.1.2).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import itertools
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from bench.common import BENCH, Child, free_port, log_dir

TEMPLATES = BENCH / "peers" / "janus"
ROOM = 4242
IFACE = "jv0"
#: The only address Janus and the Janus side's peers gather ICE candidates on.
ICE_IP = "127.0.1.1"
_PREFIX = "lcsfu-"
_made: set[str] = set()
_count = itertools.count(1)


class JanusUnavailable(RuntimeError):
    """Janus is not installed, or the namespace cannot be made (not root, no ``ip``)."""


def janus_binary() -> str | None:
    return shutil.which("janus")


def janus_version() -> str:
    binary = janus_binary()
    if binary is None:
        return "not installed"
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10)
    found = re.search(r"\((\d+\.\d+\.\d+)\)", out.stdout)
    return found.group(1) if found else out.stdout.strip()


def _library_dir() -> Path:
    for candidate in [*sorted(Path("/usr/lib").glob("*/janus")), Path("/usr/lib/janus")]:
        if (candidate / "plugins").is_dir():
            return candidate
    raise JanusUnavailable("no Janus plugins folder under /usr/lib")


def _ip(*argv: str) -> None:
    subprocess.run(["ip", *argv], check=True, capture_output=True, timeout=10)


def _delete_namespace(name: str) -> None:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=10)
    _made.discard(name)


@atexit.register
def _delete_all() -> None:
    for name in tuple(_made):
        _delete_namespace(name)


def _sweep_stale() -> None:
    """Delete ``lcsfu-<pid>-*`` namespaces left by a bench run that no longer exists."""
    try:
        listed = subprocess.run(
            ["ip", "netns", "list"], capture_output=True, text=True, timeout=10
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return
    for line in listed.splitlines():
        name = line.split()[0] if line.split() else ""
        found = re.fullmatch(rf"{_PREFIX}(\d+)-\d+", name)
        if found and not psutil.pid_exists(int(found.group(1))):
            # A killed bench's Janus and peers live on in its namespace: stop them first.
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                pids = subprocess.run(
                    ["ip", "netns", "pids", name], capture_output=True, text=True, timeout=10
                ).stdout.split()
                for pid in map(int, pids):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
            _delete_namespace(name)


def make_namespace() -> str:
    """A new namespace with ``lo`` up and ``jv0`` (127.0.1.1/32) up; returns its name.

    Raises:
        JanusUnavailable: ``ip`` failed (not root?).
    """
    _sweep_stale()
    name = f"{_PREFIX}{os.getpid()}-{next(_count)}"
    try:
        _ip("netns", "add", name)
        _made.add(name)
        _ip("-n", name, "link", "set", "lo", "up")
        _ip("-n", name, "link", "add", IFACE, "type", "veth", "peer", "name", "jv1")
        _ip("-n", name, "addr", "add", f"{ICE_IP}/32", "dev", IFACE)
        _ip("-n", name, "link", "set", IFACE, "up")
        _ip("-n", name, "link", "set", "jv1", "up")
    except (OSError, subprocess.SubprocessError) as exc:
        _delete_namespace(name)
        detail = getattr(exc, "stderr", b"") or b""
        raise JanusUnavailable(f"cannot make network namespace {name}: {exc} {detail!r}") from exc
    return name


def write_config(folder: Path, http_port: int) -> Path:
    """Fill in the templates into ``folder``; returns the path of ``janus.jcfg``."""
    lib = _library_dir()

    def disabled(kind: str, keep: str) -> str:
        return ",".join(sorted(p.name for p in (lib / kind).glob("*.so") if keep not in p.name))

    values = {
        "CONFDIR": str(folder),
        "LIBDIR": str(lib),
        "HTTP_PORT": str(http_port),
        "ROOM": str(ROOM),
        "DISABLED_PLUGINS": disabled("plugins", "videoroom"),
        "DISABLED_TRANSPORTS": disabled("transports", "janus_http"),
        "DISABLED_LOGGERS": disabled("loggers", "\0"),
        "DISABLED_EVENTS": disabled("events", "\0"),
    }
    for template in TEMPLATES.glob("*.jcfg"):
        text = re.sub(r"@([A-Z_]+)@", lambda m: values[m.group(1)], template.read_text())
        (folder / template.name).write_text(text)
    return folder / "janus.jcfg"


@dataclass
class Janus:
    """A running Janus in its namespace: ``child`` is the janus process itself."""

    namespace: str
    child: Child
    http_port: int
    folder: Path
    log: Path
    ps: psutil.Process = field(init=False)

    def __post_init__(self) -> None:
        self.ps = psutil.Process(self.child.pid)

    @property
    def exec_prefix(self) -> list[str]:
        """Prefix a command with this to run it inside the namespace."""
        return ["ip", "netns", "exec", self.namespace]

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/janus"

    async def stop(self) -> None:
        try:
            await self.child.stop(grace=5.0)
        finally:
            _delete_namespace(self.namespace)
            shutil.rmtree(self.folder, ignore_errors=True)


async def start_janus(tag: str) -> Janus:
    """Make a namespace, start Janus in it and wait until its HTTP API listens.

    Raises:
        JanusUnavailable: not installed, or the namespace could not be made.
        RuntimeError: Janus exited or did not start within 20 s (see its log).
    """
    binary = janus_binary()
    if binary is None:
        raise JanusUnavailable("janus is not installed (apt-get install janus)")
    namespace = make_namespace()
    folder = Path(tempfile.mkdtemp(prefix="janus-bench-"))
    port = free_port()  # a free port on the host; the namespace has no other listener
    log = log_dir() / f"{tag}-janus-{port}.log"
    log.unlink(missing_ok=True)
    try:
        config = write_config(folder, port)
        cmd = ["ip", "netns", "exec", namespace, binary, "-C", str(config), "-F", str(folder)]
        cmd += ["-E", IFACE, "-N", "-L", str(log)]
        child = await Child.spawn("janus", cmd, log=log.with_suffix(".out"), stdout_pipe=False)
    except BaseException:
        _delete_namespace(namespace)
        shutil.rmtree(folder, ignore_errors=True)
        raise
    janus = Janus(namespace, child, port, folder, log)
    deadline = time.monotonic() + 20
    try:
        while "HTTP webserver started" not in (log.read_text() if log.exists() else ""):
            if child.proc.returncode is not None or time.monotonic() > deadline:
                raise RuntimeError(f"janus did not start; see {log}")
            await asyncio.sleep(0.05)
    except BaseException:
        await janus.stop()
        raise
    return janus
