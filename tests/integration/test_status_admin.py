"""The operators' status page and admin API (signaling/admin.py) on a real ``liveclass serve``.

One embedded node for the module: ``/status`` and ``/status.json`` need the admin token (a
classroom token is refused), and ``liveclass admin`` lists rooms and participants, removes a
participant and ends a room through the room's command path (the clients see it). One scale-out
deployment (3 nodes, 2 SFU workers, a 6-node Redis Cluster): every node's status shows all of it
(signaling/node_heartbeat.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from clients import ClassroomClient
from tests.integration.media_peers import until
from tests.redis_cluster import RedisCluster
from tests.server import LiveclassServer
from tests.sfu_worker import SfuWorker

pytestmark = pytest.mark.timeout(60)

ADMIN_TOKEN = secrets.token_urlsafe(24)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveclassServer]:
    data = tmp_path_factory.mktemp("status")
    token_file = data / "admin-token"
    token_file.write_text(ADMIN_TOKEN + "\n")
    audit = data / "audit.jsonl"
    node = LiveclassServer(
        data,
        ("--admin-token-file", str(token_file), "--room-idle-s", "60", "--audit-log", str(audit)),
    )
    node.start()
    yield node
    node.stop()


def get(server: LiveclassServer, path: str, token: str | None) -> tuple[int, bytes, str]:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    request = urllib.request.Request(f"{server.http_url}{path}", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as r:
            return r.status, r.read(), r.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), exc.headers.get("Content-Type", "")


def admin_cli(server: LiveclassServer, *args: str) -> tuple[int, Any]:
    """Run ``liveclass admin`` against ``server`` (token from the environment)."""
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "LIVECLASS_ADMIN_TOKEN": ADMIN_TOKEN, "PYTHONPATH": str(root)}
    done = subprocess.run(
        [sys.executable, "-m", "liveclass", "admin", "--url", server.http_url, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )
    return done.returncode, json.loads(done.stdout) if done.returncode == 0 else done.stderr


@pytest.fixture
async def classes(server: LiveclassServer) -> AsyncIterator[dict[str, ClassroomClient]]:
    """A teacher and two students in a fresh room, and a teacher in another."""
    room = f"class-{secrets.token_hex(3)}"
    made = {
        "teacher": ClassroomClient(server.ws_url, server.token("t1", "teacher", room), room),
        "ada": ClassroomClient(server.ws_url, server.token("ada", "student", room), room),
        "bob": ClassroomClient(server.ws_url, server.token("bob", "student", room), room),
    }
    for client in made.values():
        await client.connect()
    yield made
    await asyncio.gather(*(c.close() for c in made.values()), return_exceptions=True)


def event_types(client: ClassroomClient) -> list[str]:
    return [e.type for e in client.session.events]


async def test_status_shows_the_node_and_its_rooms_only_to_the_admin_token(
    server: LiveclassServer, classes: dict[str, ClassroomClient]
) -> None:
    room = classes["teacher"].room
    status, body, kind = get(server, "/status.json", ADMIN_TOKEN)
    assert status == 200 and kind == "application/json"
    doc = json.loads(body)
    assert doc["mode"] == "embedded" and doc["redis"] == {}
    [node] = doc["nodes"]
    assert node["ready"] is True and node["connections"] >= 3 and node["version"]
    [open_room] = [r for r in node["rooms_open"] if r["room"] == room]
    assert [p["identity"] for p in open_room["participants"]] == ["ada", "bob", "t1"]
    assert open_room["online"] == 3

    status, page, kind = get(server, "/status", ADMIN_TOKEN)
    assert status == 200 and kind.startswith("text/html")
    assert room.encode() in page and b"<script" not in page and node["id"].encode() in page

    classroom = server.token("t1", "teacher", room)
    for path in ("/status", "/status.json", "/admin/rooms"):
        assert get(server, path, None)[0] == 401
        assert get(server, path, classroom)[0] == 403
        assert get(server, path, ADMIN_TOKEN[:-1] + "x")[0] == 403


async def test_admin_cli_lists_removes_and_ends_as_the_room_command_path(
    server: LiveclassServer, classes: dict[str, ClassroomClient]
) -> None:
    room = classes["teacher"].room
    code, listed = admin_cli(server, "rooms")
    assert code == 0, listed
    [entry] = [r for r in listed["rooms"] if r["room"] == room]
    assert {p["identity"] for p in entry["participants"]} == {"t1", "ada", "bob"}
    code, people = admin_cli(server, "participants", room)
    assert code == 0 and len(people["participants"]) == 3

    code, removed = admin_cli(server, "remove", room, "bob", "--reason", "spam")
    assert code == 0 and removed["events"] == 1, removed
    await until(lambda: "participant.removed" in event_types(classes["ada"]), 5, "removal")
    removal = next(e for e in classes["ada"].session.events if e.type == "participant.removed")
    assert removal.data["identity"] == "bob" and removal.data["by"] == "@admin"

    code, ended = admin_cli(server, "end", room, "--reason", "closing time")
    assert code == 0 and ended["events"] == 1, ended
    for who in ("teacher", "ada"):
        await until(lambda w=who: "session.ended" in event_types(classes[w]), 5, "end")
    code, again = admin_cli(server, "end", room)
    assert code == 1 and "session_ended" in again
    code, missing = admin_cli(server, "end", "never-joined")
    assert code == 1 and "no_such_room" in missing

    # Each admin action is in the audit log, as the admin, with the room's answer.
    lines = [
        json.loads(line) for line in (server.data_dir / "audit.jsonl").read_text().splitlines()
    ]
    admin = [
        (a["action"], a.get("room"), a.get("target"), a["outcome"], a.get("code"))
        for a in lines
        if a["actor"] == {"identity": "@admin", "role": "admin"}
    ]
    assert admin == [
        ("participant.remove", room, "bob", "ok", None),
        ("session.end", room, None, "ok", None),
        ("session.end", room, None, "refused", "session_ended"),
        ("session.end", "never-joined", None, "refused", "no_such_room"),
    ]
    assert not any("spam" in line or "closing time" in line for line in map(str, lines))


@pytest.fixture(scope="module")
def deployment(
    cluster: RedisCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[list[LiveclassServer], list[SfuWorker]]]:
    """3 nodes and 2 SFU workers on the module's Redis Cluster, one admin token."""
    directory = Path(tmp_path_factory.mktemp("deployment"))
    secret = secrets.token_urlsafe(32)
    nodes: list[LiveclassServer] = []
    workers: list[SfuWorker] = []
    try:
        for i in (1, 2):
            worker = SfuWorker(directory / "workers", cluster.seeds, f"w{i}", secret=secret)
            workers.append(worker)
            worker.start()
        for i in (1, 2, 3):
            node = LiveclassServer(
                directory / f"node{i}",
                ["--redis-cluster", cluster.seeds, "--node-id", f"node{i}"],
                secret=secret,
                env={"LIVECLASS_ADMIN_TOKEN": ADMIN_TOKEN},
            )
            node.data_dir.mkdir(parents=True)
            nodes.append(node)
            node.start()
        yield nodes, workers
    finally:
        for process in [*nodes, *workers]:
            process.stop()


async def test_every_node_shows_three_nodes_two_workers_and_the_cluster_state(
    deployment: tuple[list[LiveclassServer], list[SfuWorker]],
) -> None:
    nodes, _ = deployment
    room = f"scale-{secrets.token_hex(3)}"
    made = [
        ClassroomClient(node.ws_url, node.token(f"s{i}", "student", room), room)
        for i, node in enumerate(nodes)
    ]
    try:
        for client in made:
            await client.connect()
        for node in nodes:
            status, body, _ = get(node, "/status.json", ADMIN_TOKEN)
            assert status == 200, body
            doc = json.loads(body)
            assert doc["mode"] == "cluster"
            assert [n["id"] for n in doc["nodes"]] == ["node1", "node2", "node3"]
            assert all(n["ready"] and n["version"] == doc["version"] for n in doc["nodes"])
            assert [(w["id"], w["state"]) for w in doc["sfu_workers"]] == [
                ("w1", "live"),
                ("w2", "live"),
            ]
            redis = doc["redis"]
            assert redis["cluster_state"] == "ok" and redis["slots_ok"] == 16384
            assert len(redis["masters"]) == 3 and len(redis["replicas"]) == 3
            assert redis["failing"] == []
        # The heartbeats (every 2 s) bring each node's room and participants to every node.
        await until(
            lambda: all(
                any(
                    r["room"] == room and r["online"] == 3
                    for r in json.loads(get(n, "/admin/rooms", ADMIN_TOKEN)[1])["rooms"]
                )
                for n in nodes
            ),
            10,
            "the room with its 3 participants in every node's status",
        )
        status, page, _ = get(nodes[0], "/status", ADMIN_TOKEN)
        assert status == 200
        for name in (b"node1", b"node2", b"node3", b"w1", b"w2", b"cluster_state", room.encode()):
            assert name in page
        assert get(nodes[1], "/status", nodes[1].token("s1", "teacher", room))[0] == 403

        # A worker drained through the admin CLI takes no new room; undone, it is live again.
        code, drained = admin_cli(nodes[1], "drain-worker", "w1")
        assert code == 0 and drained == {"worker": "w1", "draining": True}, drained
        states = {
            w["id"]: w["state"]
            for w in json.loads(get(nodes[2], "/status.json", ADMIN_TOKEN)[1])["sfu_workers"]
        }
        assert states == {"w1": "draining", "w2": "live"}
        code, undone = admin_cli(nodes[1], "drain-worker", "w1", "--undo")
        assert code == 0 and undone == {"worker": "w1", "draining": False}, undone
        states = {
            w["id"]: w["state"]
            for w in json.loads(get(nodes[2], "/status.json", ADMIN_TOKEN)[1])["sfu_workers"]
        }
        assert states == {"w1": "live", "w2": "live"}
        code, missing = admin_cli(nodes[1], "drain-worker", "w9")
        assert code == 1 and "no_such_worker" in missing

        # An end through one node reaches the clients of every node (the room's log and bus).
        code, ended = admin_cli(nodes[0], "end", room)
        assert code == 0 and ended["events"] == 1, ended
        await until(
            lambda: all("session.ended" in event_types(c) for c in made), 10, "the end everywhere"
        )
    finally:
        await asyncio.gather(*(c.close() for c in made), return_exceptions=True)
