"""liveclass on a Redis Cluster that requires AUTH (``requirepass``/``masterauth`` and an ACL user)
and, in a second cluster, TLS with a CA made in the test: a node and an SFU worker with the right
credentials serve; a wrong password or an unknown CA fails at start, clearly, without printing the
password."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from clients import ClassroomClient
from tests.integration.yboard import YClient, board_url
from tests.redis_cluster import RedisCluster
from tests.server import LiveclassServer, free_port
from tests.sfu_worker import SfuWorker

PASSWORD = "correct horse battery staple"


def make_ca(directory: Path) -> Path:
    """A CA and a certificate for 127.0.0.1 signed by it (openssl CLI): ca.crt, redis.crt/key."""
    directory.mkdir(parents=True, exist_ok=True)

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)

    key = ["-newkey", "rsa:2048", "-nodes", "-days", "1"]
    openssl("req", "-x509", *key, "-subj", "/CN=test CA", "-keyout", "ca.key", "-out", "ca.crt")
    openssl("req", *key, "-subj", "/CN=127.0.0.1", "-keyout", "redis.key", "-out", "redis.csr")
    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    signed_by_ca = ["-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "1"]
    openssl("x509", "-req", "-in", "redis.csr", *signed_by_ca, "-extfile", "san.ext",
            "-out", "redis.crt")  # fmt: skip
    return directory


@pytest.fixture(scope="module")
def auth_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    cluster = RedisCluster(tmp_path_factory.mktemp("redis-auth"), password=PASSWORD).start()
    yield cluster
    cluster.stop()


def with_credentials(seeds: str, userinfo: str) -> str:
    return ",".join(seed.replace("://", f"://{userinfo}@") for seed in seeds.split(","))


def failed_start(directory: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """Run ``liveclass serve`` expecting it to exit 1 at start; its stderr."""
    serve = [sys.executable, "-m", "liveclass", "serve", "--port", str(free_port())]
    done = subprocess.run(
        [*serve, "--data-dir", str(directory), "--no-media", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "LIVECLASS_SECRETS": "test:" + "s" * 40, **(env or {})},
    )
    assert done.returncode == 1, done
    return done.stderr


async def joins_and_writes(node: LiveclassServer) -> None:
    """A join, a command appended to the room's log, a whiteboard update in the board store."""
    client = ClassroomClient(node.ws_url, node.token("t", "teacher"), "class", reconnect=False)
    await client.connect()
    board = await YClient.open(board_url(node, node.token("alice")))
    try:
        assert client.session.you is not None and client.session.you["identity"] == "t"
        assert (await client.chat("over an authenticated cluster"))["ids"]
        await board.sync()
        await board.draw("kept", type="line")
    finally:
        await client.close()
        await board.close()


async def test_a_node_and_a_worker_with_the_password_serve(
    auth_cluster: RedisCluster, tmp_path: Path
) -> None:
    # The node: the password from the environment (not on the command line).
    node = LiveclassServer(
        tmp_path / "node",
        ["--redis-cluster", auth_cluster.seeds, "--log-level", "debug"],
        env={"LIVECLASS_REDIS_PASSWORD": PASSWORD},
    )
    node.data_dir.mkdir()
    # The worker: the ACL user and password in the seeds' URL.
    seeds = with_credentials(auth_cluster.seeds, "liveclass:correct%20horse%20battery%20staple")
    worker = SfuWorker(
        tmp_path / "sfu", seeds, "w-auth", ["--log-level", "debug"], secret=node.secret
    )
    try:
        node.start()
        worker.start()  # ready once registered in the cluster
        await joins_and_writes(node)
        # Media: the node places the room on the worker and opens an RPC connection with a
        # worker token (Authorization: Bearer), which websockets logs at debug level on both.
        client = ClassroomClient(node.ws_url, node.token("s", "student"), "class")
        await client.connect()
        try:
            await client.subscribe_media()
        finally:
            await client.close()
    finally:
        node.stop()
        worker.stop()
    logs = {"node": node.log(full=True), "worker": worker.log_path.read_text(errors="replace")}
    assert "Bearer <redacted>" in logs["node"] + logs["worker"], "no RPC handshake was logged"
    for name, text in logs.items():
        assert PASSWORD not in text and "horse%20battery" not in text, f"the {name} logged it"
        assert "eyJ" not in text, f"the {name} logged a token"


def test_a_wrong_or_missing_password_fails_at_start_and_says_why(
    auth_cluster: RedisCluster, tmp_path: Path
) -> None:
    seeds = ["--redis-cluster", auth_cluster.seeds]
    wrong = failed_start(tmp_path, *seeds, env={"LIVECLASS_REDIS_PASSWORD": "wrong-secret"})
    assert "cannot reach the Redis Cluster" in wrong
    assert "invalid username-password pair" in wrong and "wrong-secret" not in wrong
    in_url = with_credentials(auth_cluster.seeds, "liveclass:wrong-secret")
    wrong_user = failed_start(tmp_path, "--redis-cluster", in_url)
    assert "invalid username-password pair" in wrong_user and "wrong-secret" not in wrong_user
    assert "Authentication required" in failed_start(tmp_path, *seeds)


async def test_a_node_reaches_a_tls_cluster_that_its_ca_vouches_for(tmp_path: Path) -> None:
    tls = make_ca(tmp_path / "tls")
    cluster = RedisCluster(tmp_path / "redis-tls", password=PASSWORD, tls_dir=tls).start()
    try:
        assert cluster.seeds.startswith("rediss://127.0.0.1:")
        args = ["--redis-cluster", cluster.seeds, "--no-media"]
        node = LiveclassServer(
            tmp_path / "node",
            [*args, "--redis-tls-ca-file", str(tls / "ca.crt")],
            env={"LIVECLASS_REDIS_PASSWORD": PASSWORD},
        )
        node.data_dir.mkdir()
        try:
            node.start()
            await joins_and_writes(node)
        finally:
            node.stop()
        untrusted = failed_start(tmp_path, *args, env={"LIVECLASS_REDIS_PASSWORD": PASSWORD})
        assert "certificate verify failed" in untrusted
        plain = cluster.seeds.replace("rediss://", "redis://")
        failed_start(tmp_path, "--redis-cluster", plain, env={"LIVECLASS_REDIS_PASSWORD": PASSWORD})
    finally:
        cluster.stop()
