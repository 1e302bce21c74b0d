"""Real Yjs clients for whiteboard tests: one Node process per client (tests/yjs/client.mjs).

Each process holds a ``Y.Doc`` synced by the real y-websocket ``WebsocketProvider`` and answers
JSON-line requests on stdin/stdout (the ops are listed in ``client.mjs``). One process per client
so that a test can SIGKILL one client as a crash would. Every wait is bounded; ``YjsClients.close``
stops every process it started.
"""

from __future__ import annotations

import itertools
import json
import queue
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from tests.server import LiveclassServer

YJS_DIR = Path(__file__).resolve().parent.parent / "yjs"
DRIVER = YJS_DIR / "client.mjs"
REPLY_TIMEOUT_S = 10.0


class YjsClientError(RuntimeError):
    """A Node client failed a request, did not answer in time, or exited."""


class YjsClient:
    """One Node process hosting one Yjs client; ``call(op, **args)`` returns the op's result."""

    def __init__(self, name: str, log_path: Path) -> None:
        node = shutil.which("node")
        if node is None or not (YJS_DIR / "node_modules" / "y-websocket").is_dir():
            raise YjsClientError(
                f"node or {YJS_DIR}/node_modules is missing: run `bash scripts/bootstrap.sh`"
            )
        self.name = name
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.proc = subprocess.Popen(
            [node, str(DRIVER)],
            cwd=YJS_DIR,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
        )
        self._ids = itertools.count(1)
        self._replies: queue.Queue[dict[str, Any] | None] = queue.Queue()
        threading.Thread(target=self._read, name=f"yjs-{name}", daemon=True).start()
        self.client_id: int | None = None

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._replies.put(json.loads(line))
        self._replies.put(None)

    def call(self, op: str, timeout: float = REPLY_TIMEOUT_S, **args: Any) -> Any:
        request_id = next(self._ids)
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps({"id": request_id, "op": op, **args}).encode() + b"\n")
            self.proc.stdin.flush()
        except OSError as exc:
            raise YjsClientError(f"{self.name}: {op}: {exc}; log: {self.log()}") from exc
        try:
            reply = self._replies.get(timeout=timeout)
        except queue.Empty:
            raise YjsClientError(f"{self.name}: no reply to {op} in {timeout}s") from None
        if reply is None:
            raise YjsClientError(f"{self.name}: exited during {op}; log: {self.log()}")
        if reply["id"] != request_id or not reply["ok"]:
            raise YjsClientError(f"{self.name}: {op} failed: {reply}; log: {self.log()}")
        return reply["result"]

    def open(
        self,
        server: LiveclassServer,
        identity: str,
        *,
        client_id: int,
        board: str = "main",
        room: str = "class",
        awareness: dict[str, Any] | None = None,
        port: int | None = None,
        local_address: str | None = None,
    ) -> YjsClient:
        """Connect to ``/whiteboard/<room>/<board>`` with a fresh token for ``identity`` (at
        ``port`` instead of the server's, e.g. a balancer's, from ``local_address``)."""
        args: dict[str, Any] = {
            "serverUrl": f"ws://127.0.0.1:{port or server.port}/whiteboard/{room}",
            "board": board,
            "params": {"token": server.token(identity, room=room)},
            "clientID": client_id,
        }
        if awareness is not None:
            args["awareness"] = awareness
        if local_address is not None:
            args["localAddress"] = local_address
        self.client_id = self.call("open", **args)["clientID"]
        return self

    def state(self) -> dict[str, Any]:
        result: dict[str, Any] = self.call("state")
        return result

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(5)

    def stop(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            try:
                self.proc.stdin.close()  # the driver exits when stdin closes
                self.proc.wait(2)
            except (OSError, subprocess.TimeoutExpired):
                self.kill()
        self._log.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-2000:]


class YjsClients:
    """Starts Node clients; ``close()`` stops every one of them (also those killed already)."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: list[YjsClient] = []

    def spawn(self, name: str) -> YjsClient:
        client = YjsClient(name, self.log_dir / f"yjs-{name}.log")
        self.started.append(client)
        return client

    def open(self, server: LiveclassServer, name: str, *, client_id: int, **kw: Any) -> YjsClient:
        return self.spawn(name).open(server, name, client_id=client_id, **kw)

    def open_many(
        self,
        server: LiveclassServer,
        client_ids: dict[str, int],
        awareness: Callable[[str, int], dict[str, Any]] | None = None,
    ) -> list[YjsClient]:
        """Open one client per name (also its identity); the Node processes start side by side."""
        spawned = [self.spawn(name) for name in client_ids]
        return [
            c.open(
                server,
                c.name,
                client_id=client_ids[c.name],
                awareness=awareness(c.name, client_ids[c.name]) if awareness else None,
            )
            for c in spawned
        ]

    def close(self) -> None:
        for client in self.started:
            client.stop()


def wait_for(
    what: str, check: Callable[[], Any], timeout: float = 10.0, interval: float = 0.01
) -> Any:
    """Poll ``check`` until it returns something truthy; raise with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def wait_synced(clients: Iterable[YjsClient], timeout: float = 5.0) -> None:
    """Wait until each provider has had the server's sync step 2."""
    for client in clients:
        try:
            wait_for(f"{client.name} to sync", lambda c=client: c.state()["synced"], timeout)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; connection log: {client.call('log')}") from None


def converged(clients: Sequence[YjsClient]) -> list[dict[str, Any]] | None:
    """Every client's state, when all have identical state vectors, delete sets and content."""
    states = [c.state() for c in clients]
    first = states[0]
    same = all(
        s["sv"] == first["sv"] and s["snapshot"] == first["snapshot"] and s["json"] == first["json"]
        for s in states
    )
    return states if same else None


def wait_converged(clients: Sequence[YjsClient], timeout: float = 10.0) -> list[dict[str, Any]]:
    """Wait until every client has the same document; on timeout, show how they differ."""
    deadline = time.monotonic() + timeout
    while True:
        states = converged(clients)
        if states is not None:
            return states
        if time.monotonic() >= deadline:
            detail = {
                c.name: {k: v for k, v in c.state().items() if k in ("sv", "synced", "inbound")}
                for c in clients
            }
            raise AssertionError(f"no convergence in {timeout}s: {detail}")
        time.sleep(0.02)
