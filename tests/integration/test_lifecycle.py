"""The process around the classroom: HTTP endpoints, the dev pages, tokens, clean shutdown."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import pytest

from clients import ClassroomClient, Refused
from signaling import verify
from tests.integration.classroom import client, close_all, connect_all
from tests.server import LiveclassServer, free_port


def test_health_readiness_metrics_and_the_web_app_are_served(server: LiveclassServer) -> None:
    assert server.get("/healthz")[:2] == (200, b"ok\n")
    assert server.get("/readyz")[:2] == (200, b"ready\n")
    status, body, _ = server.get("/metrics")
    assert status == 200 and b"liveclass_connections" in body
    status, body, ctype = server.get("/")
    assert status == 200 and ctype.startswith("text/html") and b"<html" in body.lower()
    status, _, ctype = server.get("/static/app.js")
    assert status == 200 and ctype.startswith("text/javascript")
    # Dot segments, plain or percent-encoded, are bad request targets (400), never a file.
    assert server.get("/static/../../pyproject.toml")[0] == 400
    assert server.get("/static/%2e%2e/%2e%2e/pyproject.toml")[0] == 400
    assert server.get("/dev")[0] == 404, "the dev pages are off by default"


async def test_dev_pages_create_a_room_and_hand_out_working_links(
    make_server: Callable[..., LiveclassServer],
) -> None:
    server = make_server("--dev")
    assert server.get("/dev")[0] == 200
    status, body, _ = server.get("/dev/api/new-room?teacher_name=Ada")
    assert status == 200
    links = json.loads(body)
    teacher_token = urlsplit(links["teacher_link"]).fragment.removeprefix("token=")
    invite = parse_qs(urlsplit(links["student_link"]).query)["invite"][0]
    status, body, _ = server.get(f"/dev/api/student-token?invite={invite}&name=Grace")
    assert status == 200
    student_token = json.loads(body)["token"]
    room = links["room"]
    teacher = ClassroomClient(server.ws_url, teacher_token, room)
    student = ClassroomClient(server.ws_url, student_token, room)
    await connect_all([teacher, student])
    try:
        assert teacher.session.you["role"] == "teacher" and teacher.session.you["name"] == "Ada"
        assert student.session.you["role"] == "student" and student.session.you["name"] == "Grace"
        invite_as_access = ClassroomClient(server.ws_url, invite, room, reconnect=False)
        try:
            await invite_as_access.connect()
            raise AssertionError("an invite must not admit anyone")
        except Refused as exc:
            assert exc.code == "token_invalid"
        assert server.get(f"/dev/api/student-token?invite={teacher_token}&name=x")[0] == 403
        assert server.get(f"/dev/api/student-token?invite={invite}&name=")[0] == 400
    finally:
        await close_all([teacher, student])


def test_dev_mode_refuses_a_public_bind_without_being_told() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "liveclass",
            "serve",
            "--dev",
            "--host",
            "0.0.0.0",
            "--port",
            str(free_port()),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "--dev-allow-public" in result.stderr


def test_token_command_mints_a_token_the_server_accepts(server: LiveclassServer) -> None:
    env_secret = f"test:{server.secret}"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "liveclass",
            "token",
            "--room",
            "class",
            "--identity",
            "ada",
            "--name",
            "Ada",
            "--role",
            "assistant",
            "--ttl",
            "30m",
            "--secrets",
            env_secret,
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    participant = verify(server.keyring, result.stdout.strip(), "class")
    assert (participant.identity, participant.name, participant.role.value) == (
        "ada",
        "Ada",
        "assistant",
    )


async def test_sigterm_tells_clients_to_reconnect_and_exits_cleanly(
    server: LiveclassServer,
) -> None:
    teacher, alice = client(server, "t", "teacher", reconnect=False), client(server, "alice")
    await connect_all([teacher, alice])
    try:
        code = await asyncio.to_thread(server.terminate)
        assert code == 0
        for c in (teacher, alice):
            await c.wait_until(lambda c=c: c.closed_with is not None, 5)
            assert c.session.reconnect_reasons == ["shutdown"]
            assert c.closed_with is not None and c.closed_with[0] == 1012
    finally:
        await close_all([teacher, alice])


def test_static_files_revalidate_with_an_etag(server: LiveclassServer) -> None:
    with urllib.request.urlopen(f"{server.http_url}/static/vendor/yjs-stack.js") as r:
        etag = r.headers["ETag"]
        assert r.status == 200 and r.headers["Cache-Control"] == "no-cache" and etag
    again = urllib.request.Request(
        f"{server.http_url}/static/vendor/yjs-stack.js", headers={"If-None-Match": etag}
    )
    with pytest.raises(urllib.error.HTTPError) as not_modified:
        urllib.request.urlopen(again)
    assert not_modified.value.code == 304
    assert not_modified.value.headers["ETag"] == etag
