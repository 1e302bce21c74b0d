"""Structured logs of a real ``liveclass serve --log-format json`` through a class: a teacher and
two students join, chat, ask, draw on the whiteboard, one resumes after a dropped connection and
one is removed. Every line the process writes is one JSON object; joins, resumes and leaves have
their line with the room and the connection; no token, secret, message body or display name is in
the log (docs/operations.md, "Logs")."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from clients import ClassroomClient
from clients.sdk import Refused
from signaling import Keyring
from signaling.auth import mint_worker_token
from tests.integration.yboard import YClient, board_url
from tests.redis_cluster import RedisCluster
from tests.server import LiveclassServer
from tests.sfu_worker import SfuWorker

ROOM = "logged-class"
CHAT = "chat-body-b1f3 meet me after class"
QUESTION = "question-body-9c2e what is a monad"
REASON = "reason-body-77aa kept shouting"
NAMES = {"t": "Name-Teacher-Quux", "ada": "Name-Ada-Lovelace-Zz", "bob": "Name-Bob-Qq"}


def json_lines(process: LiveclassServer | SfuWorker) -> list[dict[str, Any]]:
    """Every line of the process's output, each parsed (a line that is not JSON fails)."""
    assert process.log_path is not None
    parsed = []
    for number, line in enumerate(process.log_path.read_text().splitlines(), 1):
        try:
            value = json.loads(line)
        except ValueError as exc:
            raise AssertionError(f"line {number} is not JSON: {line!r}") from exc
        assert isinstance(value, dict), f"line {number} is not an object: {line!r}"
        assert {"ts", "level", "logger", "msg"} <= set(value), line
        assert value["ts"].endswith("Z") and "T" in value["ts"], value["ts"]
        parsed.append(value)
    return parsed


async def test_a_class_logs_json_lines_with_ids_and_no_secret_or_content(
    make_server: Callable[..., LiveclassServer],
) -> None:
    server = make_server("--no-media", "--log-format", "json")
    tokens = {
        identity: server.token(identity, role, ROOM, name=NAMES[identity])
        for identity, role in (("t", "teacher"), ("ada", "student"), ("bob", "student"))
    }
    clients = {
        identity: ClassroomClient(server.ws_url, token, ROOM, reconnect=identity == "ada")
        for identity, token in tokens.items()
    }
    board: YClient | None = None
    try:
        for client in clients.values():
            await client.connect()
        teacher, ada, bob = clients["t"], clients["ada"], clients["bob"]
        await ada.chat(CHAT)
        await bob.ask(QUESTION)
        board = await YClient.open(board_url(server, tokens["ada"], ROOM))
        await board.sync()
        await board.draw("shape-1", type="line")
        await ada.drop()  # reconnects and resumes from its last event
        await ada.wait_until(lambda: ada.session.resumes > 0 and ada.connected)
        await teacher.remove("bob", reason=REASON)
        await teacher.chat(CHAT)
        again = ClassroomClient(server.ws_url, tokens["bob"], ROOM, reconnect=False)
        with pytest.raises(Refused):
            await again.connect()
        await again.close()
    finally:
        if board is not None:
            await board.close()
        for client in clients.values():
            await client.close()
    server.stop()

    lines = json_lines(server)
    by_event: dict[str, list[dict[str, Any]]] = {}
    for line in lines:
        by_event.setdefault(str(line.get("event")), []).append(line)
    [serving] = by_event["serving"]
    assert serving["listen"] == f"127.0.0.1:{server.port}", serving
    assert serving["node"]

    joins = by_event["join"]
    [refused] = [line for line in joins if line["outcome"] == "refused"]
    assert refused["identity"] == "bob" and refused["code"] == "participant_removed", refused
    joins.remove(refused)
    assert {line["identity"] for line in joins} == {"t", "ada", "bob"}, joins
    [resume] = by_event["resume"]
    assert resume["identity"] == "ada" and resume["outcome"] == "exact", resume
    leaves = by_event["leave"]
    assert {"ada", "bob", "t"} <= {line["identity"] for line in leaves}, leaves
    for line in [*joins, resume, *leaves]:
        assert line["room"] == ROOM, line
        assert len(line["connection"]) == 12, line
        assert line["role"] in ("teacher", "student"), line
        assert line["level"] == "INFO" and line["logger"] == "signaling.node", line
    ada_connections = {line["connection"] for line in [*joins, resume] if line["identity"] == "ada"}
    assert len(ada_connections) == 2, "the resume is on a new connection with its own id"

    log = server.log(full=True)
    for name, token in tokens.items():
        for part in token.split("."):
            assert part not in log, f"{name}'s token is in the log"
    assert server.secret not in log, "the signing secret is in the log"
    for body in (CHAT, QUESTION, REASON, *NAMES.values()):
        assert body not in log, f"user content {body!r} is in the log"


async def test_a_cluster_node_and_an_sfu_worker_log_json_lines_with_their_ids(
    cluster: RedisCluster, tmp_path: Path
) -> None:
    node = LiveclassServer(
        tmp_path / "node",
        ["--redis-cluster", cluster.seeds, "--node-id", "node-json", "--log-format", "json"],
    )
    node.data_dir.mkdir()
    worker = SfuWorker(
        tmp_path / "sfu",
        cluster.seeds,
        "w-json",
        ["--log-format", "json"],
        secret=node.secret,
    )
    try:
        node.start()
        worker.start()
        client = ClassroomClient(node.ws_url, node.token("t", "teacher", ROOM), ROOM)
        await client.connect()
        await client.request("media.subscribe")  # the node places the room on the worker
        await client.close()
    finally:
        node.stop()
        worker.stop()

    node_lines = json_lines(node)
    [serving] = [line for line in node_lines if line.get("event") == "serving"]
    since = node_lines[node_lines.index(serving) :]  # the id is known once the node is built
    assert all(line["node"] == "node-json" for line in since), node_lines
    assert serving["listen"] == f"127.0.0.1:{node.port}"
    assert {"join", "leave"} <= {str(line.get("event")) for line in node_lines}

    worker_lines = json_lines(worker)
    [serving] = [line for line in worker_lines if line.get("event") == "serving"]
    assert serving["worker"] == "w-json" and serving["listen"] == f"127.0.0.1:{worker.port}"
    connected = [line for line in worker_lines if "node connected" in line["msg"]]
    assert connected and all(line["worker"] == "w-json" for line in connected), worker_lines


async def test_an_sfu_worker_audits_a_refused_rpc_handshake_without_its_token(
    cluster: RedisCluster, tmp_path: Path
) -> None:
    """The worker's ``--audit-log`` (it shares this module's cluster; docs/operations.md, "The
    audit log"): a node's RPC connection with a token the worker's secrets do not verify."""
    audit_path = tmp_path / "sfu-audit.jsonl"
    worker = SfuWorker(
        tmp_path / "sfu",
        cluster.seeds,
        "w-audit",
        ["--audit-log", str(audit_path), "--log-format", "json"],
        secret="the-nodes-secret-" + "3" * 32,
    )
    forged = mint_worker_token(Keyring({"test": b"not-the-secret-" + b"7" * 32}, "test"), "w-audit")
    try:
        worker.start()
        with pytest.raises(InvalidStatus) as refused:
            async with connect(
                f"ws://127.0.0.1:{worker.port}/rpc/w-audit",
                additional_headers={"Authorization": f"Bearer {forged}"},
            ):
                pass
        assert refused.value.response.status_code == 401
    finally:
        worker.stop()

    [line] = [json.loads(text) for text in audit_path.read_text().splitlines()]
    assert line["kind"] == "auth" and line["action"] == "sfu_rpc", line
    assert line["node"] == "w-audit"
    assert line["actor"] == {"address": "127.0.0.1"}
    assert line["outcome"] == "refused" and line["code"] == "token_invalid"
    assert line["detail"] == {"status": 401}
    for part in forged.split("."):
        assert part not in audit_path.read_text(), "the presented token reached the audit log"
    json_lines(worker)  # and the worker's own log stays JSON lines
