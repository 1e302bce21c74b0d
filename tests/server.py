"""Run a real ``liveclass serve`` subprocess for tests: free port, own data dir, always stopped."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rooms import Role
from signaling import Grants, Keyring, mint
from tests import processes

READY_TIMEOUT_S = 15.0


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass
class LiveclassServer:
    """One server process. ``start()`` waits for ``/readyz``; ``stop()`` always reaps it."""

    data_dir: Path
    args: Sequence[str] = ()
    port: int = field(default_factory=free_port)
    secret: str = field(default_factory=lambda: secrets.token_urlsafe(48))
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    #: Extra environment variables for the process (e.g. ``LIVECLASS_REDIS_PASSWORD``).
    env: dict[str, str] = field(default_factory=dict)

    @property
    def keyring(self) -> Keyring:
        return Keyring({"test": self.secret.encode()}, "test")

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def token(
        self,
        identity: str,
        role: str = "student",
        room: str = "class",
        *,
        name: str | None = None,
        ttl_s: int = 3600,
        now: float | None = None,
    ) -> str:
        return mint(
            self.keyring,
            identity=identity,
            name=name or identity,
            grants=Grants(room, Role(role)),
            ttl_s=ttl_s,
            now=now,
        )

    def start(self) -> LiveclassServer:
        self.log_path = self.data_dir / f"server-{self.port}.log"
        env = {**os.environ, "LIVECLASS_SECRETS": f"test:{self.secret}", **self.env}
        cmd = [
            sys.executable,
            "-m",
            "liveclass",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
            *self.args,
        ]
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        processes.wait_ready(
            self.proc,
            processes.http_ok(f"{self.http_url}/readyz"),
            READY_TIMEOUT_S,
            "server",
            self.log,
        )
        return self

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        processes.kill(self.proc)

    def terminate(self, timeout: float = 15.0) -> int:
        """SIGTERM and wait; returns the exit code."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def stop(self) -> None:
        processes.stop(self.proc)

    def log(self, *, full: bool = False) -> str:
        """The process's output: its last 4000 characters, or all of it with ``full``."""
        text = self.log_path.read_text(errors="replace") if self.log_path else ""
        return text if full else text[-4000:]

    def get(self, path: str) -> tuple[int, bytes, str]:
        """GET a path; returns (status, body, content type)."""
        try:
            with urllib.request.urlopen(f"{self.http_url}{path}", timeout=5) as r:
                return r.status, r.read(), r.headers.get("Content-Type", "")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read(), exc.headers.get("Content-Type", "")
