"""A real HAProxy for tests, running the shipped deploy/haproxy/haproxy.cfg in the foreground.

``HAProxy(directory, backends).start()`` renders the shipped config (with ``crt=``, the
TLS-terminating haproxy-tls.cfg) with only the lines it marks "rendered" replaced (the frontend
bind address and its ``ssl crt`` file, the server list, the stats socket path), starts
``haproxy -f <rendered> -db`` as a child process and waits until the frontend listens and every
server is UP after a passed health check. The runtime API on the unix stats socket answers
``server_states()`` and ``sessions_total()``, in plain socket code.

Spreading simulated clients under ``balance source``: every client from 127.0.0.1 hashes to the same
node, so give each simulated client its own loopback source address. Linux routes all of
127.0.0.0/8 to ``lo``, so any 127.x.y.z can be bound without configuration. websockets passes
``local_addr`` through to :meth:`asyncio.loop.create_connection`::

    from websockets.asyncio.client import connect

    async with connect(balancer.ws_url, local_addr=(source_address(i), 0)) as ws:
        ...

``clients.ClassroomClient(url, token, room, local_addr=(source_address(i), 0))`` does the same.
"""

from __future__ import annotations

import atexit
import csv
import re
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests import processes
from tests.server import free_port

SHIPPED_CONFIG = Path(__file__).resolve().parent.parent / "deploy" / "haproxy" / "haproxy.cfg"
START_TIMEOUT_S = 10.0
#: A unix socket path longer than this does not fit in ``sockaddr_un`` (108 bytes with the NUL).
_MAX_SOCKET_PATH = 100
#: ``check_status`` values of a passed check (layer 4 connect, layer 6 TLS, layer 7 response).
_CHECK_PASSED = frozenset({"L4OK", "L6OK", "L7OK"})

SHIPPED_TLS_CONFIG = SHIPPED_CONFIG.with_name("haproxy-tls.cfg")
#: The bind line: its address is replaced, its options (``ssl crt <file> ...``) are kept.
_BIND = re.compile(r"^(\s*)bind\s+\S+([^#\n]*?)\s*# rendered: bind$", re.MULTILINE)
_CRT = re.compile(r"(\sssl crt )\S+")
_STATS_SOCKET = re.compile(r'^(\s*stats socket )"[^"]*"(.*# rendered: stats socket)$', re.MULTILINE)
_SERVERS = re.compile(
    r"^(\s*)# rendered: servers begin.*?$.*?^\s*# rendered: servers end$",
    re.MULTILINE | re.DOTALL,
)


def source_address(i: int) -> str:
    """The ``i``-th simulated client's loopback source address, ``127.a.b.c``.

    Every octet after 127 is in 1..254, so the result is never 127.0.0.1 (the address every
    unbound client uses) nor a .0 or .255 address. ``source_address(0) == "127.1.1.1"``.

    Raises:
        ValueError: ``i`` is negative or beyond 253 * 254 * 254 addresses.
    """
    if not 0 <= i < 253 * 254 * 254:
        raise ValueError(f"no source address for client {i}")
    a, rest = divmod(i, 254 * 254)
    b, c = divmod(rest, 254)
    return f"127.{a + 1}.{b + 1}.{c + 1}"


def render(
    config: str,
    port: int,
    backends: list[tuple[str, int]],
    stats_socket: Path,
    crt: Path | None = None,
    server_options: str = "",
) -> str:
    """The shipped config with its bind address, server list and stats socket path replaced,
    and the bind line's ``ssl crt`` file with ``crt`` (haproxy-tls.cfg).

    Servers are named ``node1``..``nodeN`` in ``backends`` order, each line ending with
    ``server_options`` (e.g. ``check-ssl ca-file ca.pem`` for nodes serving TLS themselves).

    Raises:
        ValueError: a "rendered" marker is missing from the config, or ``crt`` is given and the
            bind line has no ``ssl crt`` (or the other way round).
    """
    servers = "".join(
        f"    server node{i} {host}:{port}{' ' + server_options if server_options else ''}\n"
        for i, (host, port) in enumerate(backends, 1)
    )
    for pattern, replacement in (
        (_BIND, rf"\g<1>bind 127.0.0.1:{port}\g<2>"),
        (_STATS_SOCKET, rf'\g<1>"{stats_socket}"\g<2>'),
        (_SERVERS, servers.rstrip("\n")),
    ):
        config, count = pattern.subn(replacement, config)
        if count != 1:
            raise ValueError(f"{pattern.pattern!r} matched {count} times in the config")
    config, count = _CRT.subn(lambda m: f"{m.group(1)}{crt}", config)
    if count != (crt is not None):
        raise ValueError(f"'ssl crt' is on {count} lines; the certificate given: {crt}")
    return config


@dataclass
class HAProxy:
    """One ``haproxy`` process in front of ``backends`` ((host, port) of each liveclass node).

    ``start()`` waits at most ``START_TIMEOUT_S``; ``stop()`` always reaps the process and runs at
    interpreter exit too.
    """

    directory: Path
    backends: list[tuple[str, int]]
    port: int = field(default_factory=free_port)
    #: The certificate chain and key in one PEM file: runs haproxy-tls.cfg (TLS terminated here).
    crt: Path | None = None
    #: Appended to every server line (docs/operations.md, "TLS": nodes serving TLS themselves).
    server_options: str = ""
    proc: subprocess.Popen[bytes] | None = None
    stats_socket: Path | None = None
    _socket_dir: Path | None = field(default=None, init=False, repr=False)

    @property
    def url(self) -> str:
        return f"{'https' if self.crt else 'http'}://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"{'wss' if self.crt else 'ws'}://127.0.0.1:{self.port}/ws"

    @property
    def names(self) -> list[str]:
        """Server names in ``backends`` order."""
        return [f"node{i}" for i in range(1, len(self.backends) + 1)]

    @property
    def log_path(self) -> Path:
        return self.directory / "haproxy.log"

    def start(self) -> HAProxy:
        """Render the config, start HAProxy and wait until it is ready.

        Raises:
            RuntimeError: haproxy is not installed, exited, or was not ready in time (the message
                has the end of its log).
        """
        if shutil.which("haproxy") is None:
            raise RuntimeError("haproxy is not installed (bash scripts/bootstrap.sh --system-deps)")
        self.directory.mkdir(parents=True, exist_ok=True)
        socket_path = self.directory / "stats.sock"
        if len(str(socket_path)) > _MAX_SOCKET_PATH:
            self._socket_dir = Path(tempfile.mkdtemp(prefix="haproxy-"))
            socket_path = self._socket_dir / "stats.sock"
        self.stats_socket = socket_path
        config_path = self.directory / "haproxy.cfg"
        config_path.write_text(
            render(
                (SHIPPED_TLS_CONFIG if self.crt else SHIPPED_CONFIG).read_text(),
                self.port,
                self.backends,
                socket_path,
                self.crt,
                self.server_options,
            )
        )
        atexit.register(self.stop)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                ["haproxy", "-f", str(config_path), "-db"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        processes.wait_ready(self.proc, self._ready, START_TIMEOUT_S, "haproxy", self.log)
        return self

    def stop(self) -> None:
        """SIGTERM (HAProxy's immediate stop), then SIGKILL if it is still there after 10 s."""
        processes.stop(self.proc)
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""

    # -- runtime API -------------------------------------------------------------------------------

    def command(self, line: str, timeout: float = 5.0) -> str:
        """Send one runtime API command on the stats socket; returns HAProxy's whole answer.

        Raises:
            OSError: the socket is absent or refused the connection.
        """
        assert self.stats_socket is not None, "start() first"
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(str(self.stats_socket))
            s.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def stats(self) -> list[dict[str, str]]:
        """The rows of ``show stat`` (CSV), one dict per row keyed by column name (``pxname``,
        ``svname`` (a server name, ``FRONTEND`` or ``BACKEND``), ``status``, ``stot``,
        ``check_status``...)."""
        lines = self.command("show stat").splitlines()
        if not lines or not lines[0].startswith("# "):
            raise RuntimeError(f"unexpected 'show stat' answer: {lines[:3]}")
        return list(csv.DictReader([lines[0].removeprefix("# "), *filter(None, lines[1:])]))

    def servers(self) -> list[dict[str, str]]:
        """The server rows of :meth:`stats`."""
        return [row for row in self.stats() if row["svname"] not in ("FRONTEND", "BACKEND")]

    def stats_of(self, name: str) -> dict[str, str]:
        """The :meth:`stats` row of server ``name``.

        Raises:
            KeyError: there is no such server.
        """
        for row in self.servers():
            if row["svname"] == name:
                return row
        raise KeyError(name)

    def server_states(self) -> dict[str, str]:
        """Server name -> status: ``UP``, ``DOWN``, ``UP 1/2`` (failing, not down yet),
        ``DOWN 1/2`` (recovering), ``MAINT``, ``no check``..."""
        return {row["svname"]: row["status"] for row in self.servers()}

    def sessions_total(self) -> dict[str, int]:
        """Server name -> connections HAProxy has made to it since start (``stot``; health checks
        are not counted)."""
        return {row["svname"]: int(row["stot"] or 0) for row in self.servers()}

    def wait_state(self, name: str, state: str, timeout: float = 5.0) -> float:
        """Wait until server ``name`` has status ``state``; returns the seconds waited.

        Raises:
            TimeoutError: it did not within ``timeout`` seconds (the message has its last status).
        """
        start = time.monotonic()
        while True:
            current = self.server_states().get(name)
            if current == state:
                return time.monotonic() - start
            if time.monotonic() - start > timeout:
                raise TimeoutError(f"{name} is {current!r}, not {state!r}, after {timeout}s")
            time.sleep(0.02)

    def _ready(self) -> bool:
        """The frontend listens (``OPEN``; checked on the stats socket rather than by connecting,
        which would count as a session on some server) and every server passed a check."""
        try:
            rows = self.stats()
        except OSError:
            return False
        frontend = [row for row in rows if row["svname"] == "FRONTEND"]
        servers = [row for row in rows if row["svname"] not in ("FRONTEND", "BACKEND")]
        return (
            [row["status"] for row in frontend] == ["OPEN"]
            and len(servers) == len(self.backends)
            and all(
                row["status"] == "UP" and row["check_status"].removeprefix("* ") in _CHECK_PASSED
                for row in servers
            )
        )
