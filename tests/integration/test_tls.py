"""TLS on a node's port (``liveclass serve --tls-cert --tls-key``): a class over ``wss://`` with a
CA the test makes (trustme), a plain client refused cleanly, a renewed certificate loaded on
SIGHUP while connections stay open, and a startup error naming a missing file.

One server serves the module; the SIGHUP tests issue their new pairs from the same CA, so every
test trusts whatever pair is loaded when it runs.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack
import pytest
import trustme
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidHandshake

from clients import ClassroomClient
from liveclass.config import rpc_client_tls
from sfu.remote import RemoteWorker, WorkerLost
from signaling.auth import mint_worker_token
from tests import processes
from tests.haproxy import HAProxy
from tests.redis_cluster import RedisCluster
from tests.server import READY_TIMEOUT_S, LiveclassServer
from tests.sfu_worker import SfuWorker

WAIT_S = 5.0


@dataclass
class TlsFiles:
    """The CA a test trusts and the server's certificate and key files, issued by it."""

    ca: trustme.CA
    cert: Path
    key: Path

    def issue(self) -> bytes:
        """Write a new pair for 127.0.0.1 over the files; returns the new certificate (DER)."""
        issued = self.ca.issue_cert("127.0.0.1", "localhost")
        issued.private_key_pem.write_to_path(str(self.key))
        issued.cert_chain_pems[0].write_to_path(str(self.cert))
        return ssl.PEM_cert_to_DER_cert(issued.cert_chain_pems[0].bytes().decode())

    def client_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        return context


@dataclass
class TlsServer(LiveclassServer):
    """A node serving TLS; ready when ``https://.../readyz`` answers 200 to a client trusting
    the test's CA."""

    tls: TlsFiles | None = None

    @property
    def http_url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"wss://127.0.0.1:{self.port}/ws"

    def start(self) -> TlsServer:
        assert self.tls is not None
        self.log_path = self.data_dir / f"server-{self.port}.log"
        env = {**os.environ, "LIVECLASS_SECRETS": f"test:{self.secret}"}
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
            "--tls-cert",
            str(self.tls.cert),
            "--tls-key",
            str(self.tls.key),
            *self.args,
        ]
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        processes.wait_ready(self.proc, self.ready, READY_TIMEOUT_S, "server", self.log)
        return self

    def ready(self) -> bool:
        return self.https_status("/readyz") == 200

    def https_status(self, path: str) -> int:
        assert self.tls is not None
        try:
            with urllib.request.urlopen(
                f"{self.http_url}{path}", timeout=1, context=self.tls.client_context()
            ) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return exc.code
        except OSError:
            return 0


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    directory = tmp_path_factory.mktemp("tls")
    files = TlsFiles(trustme.CA(), directory / "cert.pem", directory / "key.pem")
    files.issue()
    return files


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, tls_files: TlsFiles) -> Iterator[TlsServer]:
    node = TlsServer(tmp_path_factory.mktemp("node"), tls=tls_files)
    try:
        yield node.start()
    finally:
        node.stop()


async def recv(ws: ClientConnection, type_: str) -> dict[str, Any]:
    """The next frame of type ``type_`` (others skipped), within WAIT_S."""
    async with asyncio.timeout(WAIT_S):
        while True:
            frame = msgpack.unpackb(await ws.recv())
            if frame["t"] == type_:
                return dict(frame)


async def join(server: LiveclassServer, context: ssl.SSLContext, identity: str) -> ClientConnection:
    ws = await connect(server.ws_url, ssl=context, open_timeout=WAIT_S, compression=None)
    token = server.token(identity, "teacher")
    await ws.send(msgpack.packb({"t": "join", "token": token, "room": "class", "last_id": None}))
    await recv(ws, "welcome")
    return ws


async def chat_round_trip(ws: ClientConnection, ref: int, text: str) -> None:
    """Send a chat message; its ``ack`` and its ``chat.message`` event come back."""
    await ws.send(msgpack.packb({"t": "chat.send", "ref": ref, "text": text}))
    async with asyncio.timeout(WAIT_S):
        acked = seen = False
        while not (acked and seen):
            frame = msgpack.unpackb(await ws.recv())
            acked = acked or (frame["t"] == "ack" and frame["ref"] == ref)
            seen = seen or (
                frame["t"] == "event"
                and frame["type"] == "chat.message"
                and frame["data"]["text"] == text
            )


def peer_cert(ws: ClientConnection) -> bytes:
    ssl_object = ws.transport.get_extra_info("ssl_object")
    return bytes(ssl_object.getpeercert(binary_form=True))


async def test_a_client_joins_a_class_over_wss_trusting_the_tests_ca(
    server: TlsServer, tls_files: TlsFiles
) -> None:
    ws = await join(server, tls_files.client_context(), "ada")
    try:
        assert ws.transport.get_extra_info("ssl_object").version() == "TLSv1.3"
        await chat_round_trip(ws, 1, "over TLS")
    finally:
        await ws.close()
    for path in ("/healthz", "/readyz", "/metrics", "/"):
        assert server.https_status(path) == 200, path


async def test_a_tls_1_2_client_is_served_and_a_tls_1_1_client_is_not(
    server: TlsServer, tls_files: TlsFiles
) -> None:
    tls12 = tls_files.client_context()
    tls12.maximum_version = ssl.TLSVersion.TLSv1_2
    ws = await join(server, tls12, "bea")
    try:
        assert ws.transport.get_extra_info("ssl_object").version() == "TLSv1.2"
    finally:
        await ws.close()
    tls11 = tls_files.client_context()
    with warnings.catch_warnings():  # TLS 1.1 is deprecated: that is the point
        warnings.simplefilter("ignore", DeprecationWarning)
        tls11.minimum_version = ssl.TLSVersion.TLSv1
        tls11.maximum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises(ssl.SSLError):
        await connect(server.ws_url, ssl=tls11, open_timeout=WAIT_S)


def test_a_client_that_does_not_trust_the_ca_is_refused(server: TlsServer) -> None:
    with pytest.raises(urllib.error.URLError) as refused:
        urllib.request.urlopen(f"{server.http_url}/healthz", timeout=WAIT_S)
    assert isinstance(refused.value.reason, ssl.SSLCertVerificationError)


async def test_a_plain_client_to_the_tls_port_is_refused_cleanly(
    server: TlsServer, tls_files: TlsFiles
) -> None:
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.port), timeout=WAIT_S) as plain:
        plain.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        answer = b""
        while chunk := plain.recv(4096):
            answer += chunk
    assert not answer.startswith(b"HTTP/"), answer  # an alert at most, then the close
    with pytest.raises((OSError, InvalidHandshake)):
        await connect(f"ws://127.0.0.1:{server.port}/ws", open_timeout=WAIT_S)
    assert time.monotonic() - started < 2 * WAIT_S / 5
    ws = await join(server, tls_files.client_context(), "cy")  # the port goes on serving TLS
    await ws.close()
    assert "Traceback" not in server.log(full=True)


async def wait_for_cert(
    server: TlsServer, tls_files: TlsFiles, expected: bytes
) -> ClientConnection:
    """A new connection, once the server hands out ``expected`` (the SIGHUP is asynchronous)."""
    deadline = time.monotonic() + WAIT_S
    while True:
        ws = await join(server, tls_files.client_context(), "new")
        if peer_cert(ws) == expected or time.monotonic() > deadline:
            return ws
        await ws.close()
        await asyncio.sleep(0.05)


async def test_sighup_serves_a_renewed_certificate_to_new_connections_and_keeps_open_ones(
    server: TlsServer, tls_files: TlsFiles
) -> None:
    assert server.proc is not None
    existing = await join(server, tls_files.client_context(), "dee")
    try:
        old = peer_cert(existing)
        renewed = tls_files.issue()
        assert renewed != old
        server.proc.send_signal(signal.SIGHUP)
        fresh = await wait_for_cert(server, tls_files, renewed)
        try:
            assert peer_cert(fresh) == renewed
            await chat_round_trip(existing, 1, "still here after the reload")
            assert peer_cert(existing) == old
        finally:
            await fresh.close()
    finally:
        await existing.close()
    assert "reloaded the TLS certificate" in server.log(full=True)


async def test_sighup_with_a_bad_pair_logs_an_error_and_keeps_the_certificate_in_use(
    server: TlsServer, tls_files: TlsFiles
) -> None:
    assert server.proc is not None
    in_use = tls_files.issue()
    server.proc.send_signal(signal.SIGHUP)
    (await wait_for_cert(server, tls_files, in_use)).transport.abort()
    other = trustme.CA().issue_cert("127.0.0.1")
    other.private_key_pem.write_to_path(str(tls_files.key))  # a key of another certificate
    server.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + WAIT_S
    while "kept the TLS certificate in use" not in server.log(full=True):
        assert time.monotonic() < deadline, server.log()
        await asyncio.sleep(0.05)
    assert "ERROR" in next(
        line for line in server.log(full=True).splitlines() if "kept the TLS" in line
    )
    ws = await join(server, tls_files.client_context(), "eve")
    try:
        assert peer_cert(ws) == in_use
    finally:
        await ws.close()
    tls_files.issue()  # a good pair on disk again for whatever runs next


@pytest.mark.parametrize("missing", ["cert", "key"])
def test_a_missing_certificate_or_key_file_stops_the_start_with_one_line_naming_it(
    tmp_path: Path, tls_files: TlsFiles, missing: str
) -> None:
    files = {"cert": str(tls_files.cert), "key": str(tls_files.key)}
    files[missing] = str(tmp_path / f"no-{missing}.pem")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "liveclass",
            "serve",
            "--port",
            "0",
            "--data-dir",
            str(tmp_path),
            "--tls-cert",
            files["cert"],
            "--tls-key",
            files["key"],
        ],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "LIVECLASS_SECRETS": "k1:" + "s" * 48},
    )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert files[missing] in lines[0] and "No such file" in lines[0], lines[0]


@pytest.fixture(scope="module")
def plain_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveclassServer]:
    node = LiveclassServer(tmp_path_factory.mktemp("plain-node"))
    try:
        yield node.start()
    finally:
        node.stop()


@pytest.fixture(scope="module")
def tls_balancer(
    tmp_path_factory: pytest.TempPathFactory, tls_files: TlsFiles, plain_node: LiveclassServer
) -> Iterator[HAProxy]:
    directory = tmp_path_factory.mktemp("haproxy-tls")
    issued = tls_files.ca.issue_cert("127.0.0.1")
    crt = directory / "liveclass.pem"  # the chain, then the key: HAProxy's `ssl crt` file
    crt.write_bytes(b"".join(pem.bytes() for pem in issued.cert_chain_pems))
    with crt.open("ab") as f:
        f.write(issued.private_key_pem.bytes())
    haproxy = HAProxy(directory, [("127.0.0.1", plain_node.port)], crt=crt)
    try:
        yield haproxy.start()
    finally:
        haproxy.stop()


async def test_a_client_joins_over_wss_through_haproxy_terminating_tls_before_a_plain_node(
    tls_balancer: HAProxy, plain_node: LiveclassServer, tls_files: TlsFiles
) -> None:
    assert tls_balancer.ws_url.startswith("wss://") and plain_node.ws_url.startswith("ws://")
    ws = await connect(
        tls_balancer.ws_url, ssl=tls_files.client_context(), open_timeout=WAIT_S, compression=None
    )
    try:
        assert ws.transport.get_extra_info("ssl_object").version() == "TLSv1.3"
        token = plain_node.token("fay", "teacher")
        await ws.send(
            msgpack.packb({"t": "join", "token": token, "room": "class", "last_id": None})
        )
        await recv(ws, "welcome")
        await chat_round_trip(ws, 1, "through the balancer")
    finally:
        await ws.close()
    assert tls_balancer.sessions_total() == {"node1": 1}


def test_a_plain_client_to_haproxys_tls_port_is_refused(tls_balancer: HAProxy) -> None:
    with socket.create_connection(("127.0.0.1", tls_balancer.port), timeout=WAIT_S) as plain:
        plain.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        answer = b""
        while chunk := plain.recv(4096):
            answer += chunk
    assert not answer.startswith(b"HTTP/"), answer


@dataclass
class TlsSfuWorker(SfuWorker):
    """A ``liveclass sfu`` worker serving its RPC (and probes) over TLS."""

    tls: TlsFiles | None = field(default=None, kw_only=True)

    @property
    def http_url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def start(self) -> TlsSfuWorker:
        assert self.tls is not None
        self.directory.mkdir(parents=True, exist_ok=True)
        cmd = [
            sys.executable,
            "-m",
            "liveclass",
            "sfu",
            *("--listen", f"127.0.0.1:{self.port}", "--redis-cluster", self.seeds),
            *("--worker-id", self.worker_id, "--sfu-listen-ips", "127.0.0.1"),
            *("--tls-cert", str(self.tls.cert), "--tls-key", str(self.tls.key)),
        ]
        env = {**os.environ, "LIVECLASS_SECRETS": f"test:{self.secret}"}
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        context = self.tls.client_context()

        def ready() -> bool:
            try:
                with urllib.request.urlopen(
                    f"{self.http_url}/readyz", timeout=1, context=context
                ) as response:
                    return bool(response.status == 200)
            except OSError:
                return False

        processes.wait_ready(self.proc, ready, READY_TIMEOUT_S, "sfu worker", self.log)
        return self

    def metrics_over_tls(self) -> str:
        assert self.tls is not None
        context = self.tls.client_context()
        with urllib.request.urlopen(f"{self.http_url}/metrics", timeout=5, context=context) as r:
            return str(r.read().decode())


@pytest.fixture(scope="module")
def tls_worker(
    cluster: RedisCluster, tls_files: TlsFiles, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TlsSfuWorker]:
    worker = TlsSfuWorker(
        tmp_path_factory.mktemp("worker"),
        cluster.seeds,
        f"w-tls-{secrets.token_hex(3)}",
        secret=SFU_SECRET,
        tls=tls_files,
    )
    try:
        yield worker.start()
    finally:
        worker.stop()


SFU_SECRET = secrets.token_urlsafe(32)


async def test_a_worker_serves_its_rpc_over_wss_to_a_node_that_trusts_its_ca(
    tls_worker: TlsSfuWorker, tls_files: TlsFiles, tmp_path: Path
) -> None:
    url = f"wss://127.0.0.1:{tls_worker.port}"
    assert f"nodes reach it at {url}" in tls_worker.log()  # what it registers for the nodes
    ca_file = tmp_path / "ca.pem"
    tls_files.ca.cert_pem.write_to_path(str(ca_file))
    lost: list[str] = []

    def remote(tls: ssl.SSLContext | None) -> RemoteWorker:
        return RemoteWorker(
            tls_worker.worker_id,
            url,
            lambda _, why: lost.append(why),
            token=lambda worker_id: mint_worker_token(tls_worker.keyring, worker_id),
            tls=tls,
        )

    untrusting = remote(None)  # the system's CAs do not know the test's CA
    with pytest.raises(WorkerLost, match="CERTIFICATE_VERIFY_FAILED"):
        await untrusting.connect()
    node = remote(rpc_client_tls(str(ca_file)))
    await node.connect()
    try:
        assert await node.call("close_peer", peer_id="nobody") is None
    finally:
        await node.close()
    assert lost == []
    assert "Traceback" not in tls_worker.log()


def test_sighup_gives_a_worker_a_renewed_certificate(
    tls_worker: TlsSfuWorker, tls_files: TlsFiles
) -> None:
    assert tls_worker.proc is not None
    renewed = tls_files.issue()
    tls_worker.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + WAIT_S
    while True:
        with socket.create_connection(("127.0.0.1", tls_worker.port), timeout=WAIT_S) as raw:
            context = tls_files.client_context()
            with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                if tls.getpeercert(binary_form=True) == renewed:
                    break
        assert time.monotonic() < deadline, tls_worker.log()
        time.sleep(0.05)
    assert "reloaded the TLS certificate" in tls_worker.log()


async def test_a_node_with_the_workers_ca_file_places_media_on_a_wss_worker(
    cluster: RedisCluster,
    tls_worker: TlsSfuWorker,
    tls_files: TlsFiles,
    tmp_path: Path,
) -> None:
    ca_file = tmp_path / "ca.pem"
    tls_files.ca.cert_pem.write_to_path(str(ca_file))
    node = LiveclassServer(
        tmp_path / "node",
        ["--redis-cluster", cluster.seeds, "--sfu-tls-ca-file", str(ca_file)],
        secret=SFU_SECRET,
    )
    node.data_dir.mkdir()
    node.start()
    client = ClassroomClient(node.ws_url, node.token("gus", room="tls-media"), "tls-media")
    try:
        await client.connect()
        # Answered only once the worker answered the node's call over wss:// (a node that cannot
        # reach the worker answers media_unavailable).
        await client.subscribe_media()
        placed = cluster.cli(cluster.ports[0], "-c", "get", "{sfu}:room:tls-media").strip()
        assert placed == tls_worker.worker_id
        metrics = tls_worker.metrics_over_tls()
        assert re.search(r"^liveclass_sfu_rpc_connections 1(\.0)?$", metrics, re.M), metrics
    finally:
        await client.close()
        node.stop()


async def test_haproxy_passes_tls_through_to_nodes_serving_it_and_checks_them_over_tls(
    server: TlsServer, tls_files: TlsFiles, tmp_path: Path
) -> None:
    ca_file = tmp_path / "ca.pem"
    tls_files.ca.cert_pem.write_to_path(str(ca_file))
    balancer = HAProxy(  # the plain haproxy.cfg, its /healthz checks over TLS (operations.md)
        tmp_path / "haproxy",
        [("127.0.0.1", server.port)],
        server_options=f"check-ssl verify required ca-file {ca_file}",
    )
    balancer.start()  # ready only once the node passed a check
    try:
        ws = await connect(
            f"wss://127.0.0.1:{balancer.port}/ws",
            ssl=tls_files.client_context(),
            open_timeout=WAIT_S,
            compression=None,
        )
        try:
            direct = await join(server, tls_files.client_context(), "hal")
            assert peer_cert(ws) == peer_cert(direct)  # the node's own certificate
            await direct.close()
        finally:
            await ws.close()
    finally:
        balancer.stop()


@pytest.fixture(scope="module")
def cluster_nodes(
    cluster: RedisCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[LiveclassServer]]:
    """Two plain nodes on the module's cluster (no media, no rebalancing: only HAProxy's choice
    of node is looked at)."""
    secret = secrets.token_urlsafe(32)
    started: list[LiveclassServer] = []
    try:
        for i in (1, 2):
            args = [
                *("--redis-cluster", cluster.seeds, "--node-id", f"tls-node{i}"),
                *("--no-media", "--no-rebalance"),
            ]
            node = LiveclassServer(tmp_path_factory.mktemp(f"cluster-node{i}"), args, secret=secret)
            started.append(node)
            node.start()
        yield started
    finally:
        for node in started:
            node.stop()


async def test_haproxy_terminating_tls_balances_as_haproxy_cfg_by_least_connections(
    cluster_nodes: list[LiveclassServer], tls_files: TlsFiles, tmp_path: Path
) -> None:
    issued = tls_files.ca.issue_cert("127.0.0.1")
    crt = tmp_path / "liveclass.pem"
    crt.write_bytes(issued.cert_chain_pems[0].bytes() + issued.private_key_pem.bytes())
    balancer = HAProxy(
        tmp_path / "haproxy", [("127.0.0.1", node.port) for node in cluster_nodes], crt=crt
    )
    balancer.start()
    held: list[ClientConnection] = []
    try:
        for i in range(4):  # from one address: a source hash would put them all on one node
            ws = await connect(balancer.ws_url, ssl=tls_files.client_context(), open_timeout=WAIT_S)
            held.append(ws)
            token = cluster_nodes[0].token(f"s{i}")
            await ws.send(msgpack.packb({"t": "join", "token": token, "room": "class"}))
            await recv(ws, "welcome")
        assert balancer.sessions_total() == {"node1": 2, "node2": 2}
    finally:
        for ws in held:
            await ws.close()
        balancer.stop()
