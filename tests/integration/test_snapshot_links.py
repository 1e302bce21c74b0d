"""Whiteboard snapshot downloads over a real server: only staff who are still in a running session
download, whatever their token says."""

from __future__ import annotations

import asyncio
import time
import urllib.error
import urllib.request

from clients import ClassroomClient
from tests.integration.yboard import YClient, board_url
from tests.server import LiveclassServer


async def joined(server: LiveclassServer, identity: str, role: str) -> ClassroomClient:
    client = ClassroomClient(server.ws_url, server.token(identity, role), "class", reconnect=False)
    await client.connect()
    return client


def download(server: LiveclassServer, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"{server.http_url}{path}", timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


async def saved_snapshot(server: LiveclassServer, staff: ClassroomClient) -> int:
    """Save a snapshot of ``main`` and wait until the board store holds it; its id."""
    snapshot_id = int((await staff.snapshot_board())["ids"][0])
    path = f"/whiteboard/class/main/snapshots/{snapshot_id}?token={server.token('t', 'teacher')}"
    deadline = time.monotonic() + 5
    for _ in range(100):
        if download(server, path)[0] != 404 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    return snapshot_id


async def test_a_removed_assistant_and_an_ended_session_download_no_snapshot(
    server: LiveclassServer,
) -> None:
    teacher = await joined(server, "t", "teacher")
    assistant = await joined(server, "asst", "assistant")
    drawer = await YClient.open(board_url(server, server.token("alice")))
    try:
        await drawer.sync()
        await drawer.draw("kept", type="line")
        before = await saved_snapshot(server, teacher)
        token = server.token("asst", "assistant")
        path = "/whiteboard/class/main/snapshots/{}?token=" + token
        assert download(server, path.format(before))[0] == 200

        await teacher.remove("asst", "done helping")
        after = await saved_snapshot(server, teacher)
        assert download(server, path.format(before)) == (
            403,
            b"participant_removed: you were removed\n",
        )
        assert download(server, path.format(after))[0] == 403

        await teacher.end_session("over")
        teacher_path = "/whiteboard/class/main/snapshots/{}?token=" + server.token("t", "teacher")
        assert download(server, teacher_path.format(before)) == (
            403,
            b"session_ended: the session has ended\n",
        )
    finally:
        await teacher.close()
        await assistant.close()
        await drawer.close()
