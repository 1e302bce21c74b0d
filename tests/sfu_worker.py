"""Run a real ``liveclass sfu`` worker process for tests: free port, loopback-only ICE, the nodes'
secret, always stopped."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from signaling import Keyring
from tests import processes
from tests.server import free_port

READY_TIMEOUT_S = 20.0


@dataclass
class SfuWorker:
    """One worker process registered on the cluster at ``seeds``; ``start()`` waits until it is
    registered (``/readyz``). ``secret`` is the nodes' (:attr:`tests.server.LiveclassServer.secret`,
    kid ``test``): the worker accepts only RPC connections with a token signed with it."""

    directory: Path
    seeds: str
    worker_id: str
    args: Sequence[str] = ()
    secret: str = field(kw_only=True)
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def keyring(self) -> Keyring:
        return Keyring({"test": self.secret.encode()}, "test")

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> SfuWorker:
        self.directory.mkdir(parents=True, exist_ok=True)
        cmd = [
            sys.executable,
            "-m",
            "liveclass",
            "sfu",
            "--listen",
            f"127.0.0.1:{self.port}",
            "--redis-cluster",
            self.seeds,
            "--worker-id",
            self.worker_id,
            "--sfu-listen-ips",
            "127.0.0.1",
            *self.args,
        ]
        log = self.log_path.open("ab")
        env = {**os.environ, "LIVECLASS_SECRETS": f"test:{self.secret}"}
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        processes.wait_ready(
            self.proc,
            processes.http_ok(f"{self.http_url}/readyz"),
            READY_TIMEOUT_S,
            "sfu worker",
            self.log,
        )
        return self

    @property
    def log_path(self) -> Path:
        return self.directory / f"sfu-{self.worker_id}.log"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        processes.kill(self.proc)

    def stop(self) -> None:
        processes.stop(self.proc)

    def metrics(self) -> str:
        """The worker's ``/metrics`` (Prometheus text; read without a token, as Prometheus does)."""
        try:
            with urllib.request.urlopen(f"{self.http_url}/metrics", timeout=5) as r:
                return str(r.read().decode())
        except urllib.error.URLError as exc:
            raise RuntimeError(f"worker {self.worker_id} has no /metrics: {exc}") from exc

    def metric(self, name: str) -> float:
        """One unlabelled sample of the worker's ``/metrics``."""
        found = re.search(rf"^{name} (\S+)$", self.metrics(), re.M)
        if found is None:
            raise RuntimeError(f"no {name} in worker {self.worker_id}'s /metrics")
        return float(found.group(1))
