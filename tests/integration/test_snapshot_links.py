"""Whiteboard snapshot downloads over a real server: through short-lived, single-use links
(``board.snapshot_link``) for one snapshot, asked for on ``/ws`` by staff who are still in a
running session; an access token in the URL is refused."""

from __future__ import annotations

import asyncio
import time

import pytest
from pycrdt import Array, Doc

from clients import ClassroomClient, CommandFailed
from signaling.snapshot_links import mint_snapshot_token, snapshot_path
from tests.integration.yboard import YClient, board_url
from tests.server import LiveclassServer


async def joined(server: LiveclassServer, identity: str, role: str) -> ClassroomClient:
    client = ClassroomClient(server.ws_url, server.token(identity, role), "class", reconnect=False)
    await client.connect()
    return client


def download(server: LiveclassServer, path: str) -> tuple[int, bytes]:
    status, body, _ = server.get(path)
    return status, body


def forged_link(server: LiveclassServer, identity: str, snapshot_id: int, **kwargs: float) -> str:
    """A link signed with the server's keyring, as the server would mint it (or not)."""
    token = mint_snapshot_token(
        server.keyring,
        room="class",
        board="main",
        snapshot_id=snapshot_id,
        identity=identity,
        **kwargs,  # type: ignore[arg-type]
    )
    return snapshot_path("class", "main", snapshot_id, token)


async def saved_snapshot(server: LiveclassServer, staff: ClassroomClient) -> int:
    """Save a snapshot of ``main`` and wait until the board store holds it; its id."""
    snapshot_id = int((await staff.snapshot_board())["ids"][0])
    deadline = time.monotonic() + 5
    for _ in range(100):
        status, _ = download(server, forged_link(server, "t", snapshot_id))
        if status != 404 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    return snapshot_id


def records(update: bytes) -> list[str]:
    doc = Doc()
    doc.apply_update(update)
    return [r["key"] for r in doc.get("records", type=Array).to_py() or []]


async def test_a_snapshot_link_downloads_that_snapshot_once(server: LiveclassServer) -> None:
    teacher = await joined(server, "t", "teacher")
    drawer = await YClient.open(board_url(server, server.token("alice")))
    try:
        await drawer.sync()
        await drawer.draw("first", type="line")
        first = await saved_snapshot(server, teacher)
        await drawer.draw("second", type="rect")
        second = await saved_snapshot(server, teacher)

        ack = await teacher.request("board.snapshot_link", board="main", snapshot_id=first)
        url: str = ack["url"]
        assert ack["ids"] == [] and url.startswith(f"/whiteboard/class/main/snapshots/{first}?")
        status, body = download(server, url)
        assert status == 200 and records(body) == ["first"]
        assert download(server, url) == (403, b"token_invalid: this link was used already\n")

        # For that snapshot only: another id, or another board, with the same token.
        other = await teacher.request("board.snapshot_link", board="main", snapshot_id=first)
        for path in (
            other["url"].replace(f"/snapshots/{first}?", f"/snapshots/{second}?"),
            other["url"].replace("/main/", "/b1/"),
        ):
            assert download(server, path) == (
                403,
                b"token_invalid: this link is for another snapshot\n",
            )
        assert download(server, other["url"])[0] == 200  # the refusals did not use it up

        # The SDK asks for a link and downloads through it.
        assert records(await teacher.download_snapshot("main", second)) == ["first", "second"]
    finally:
        await teacher.close()
        await drawer.close()


async def test_expired_long_lived_and_access_tokens_are_refused(server: LiveclassServer) -> None:
    teacher = await joined(server, "t", "teacher")
    drawer = await YClient.open(board_url(server, server.token("alice")))
    try:
        await drawer.sync()
        await drawer.draw("kept", type="line")
        snapshot_id = await saved_snapshot(server, teacher)
        expired = forged_link(server, "t", snapshot_id, now=time.time() - 120)
        status, body = download(server, expired)
        assert status == 403 and body.startswith(b"token_expired:"), body
        lasting = forged_link(server, "t", snapshot_id, ttl_s=10**8)
        status, body = download(server, lasting)
        assert status == 403 and b"lifetime" in body, body
        access = server.token("t", "teacher")
        path = f"/whiteboard/class/main/snapshots/{snapshot_id}?token={access}"
        status, body = download(server, path)
        assert status == 403 and body.startswith(b"token_invalid:"), body
        assert download(server, f"/whiteboard/class/main/snapshots/{snapshot_id}")[0] == 403
        assert download(server, forged_link(server, "t", snapshot_id))[0] == 200
    finally:
        await teacher.close()
        await drawer.close()


async def test_students_get_no_snapshot_link(server: LiveclassServer) -> None:
    student = await joined(server, "alice", "student")
    try:
        with pytest.raises(CommandFailed) as refused:
            await student.request("board.snapshot_link", board="main", snapshot_id=1)
        assert refused.value.code == "not_allowed"
        with pytest.raises(CommandFailed) as bad:
            await student.request("board.snapshot_link", board="main", snapshot_id="1")
        assert (bad.value.code, bad.value.field) == ("bad_field", "snapshot_id")
    finally:
        await student.close()


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
        held = (await assistant.request("board.snapshot_link", board="main", snapshot_id=before))[
            "url"
        ]
        spare = (await assistant.request("board.snapshot_link", board="main", snapshot_id=before))[
            "url"
        ]
        assert download(server, spare)[0] == 200

        await teacher.remove("asst", "done helping")
        after = await saved_snapshot(server, teacher)
        assert download(server, held) == (
            403,
            b"participant_removed: you were removed from this session\n",
        )
        assert download(server, forged_link(server, "asst", after))[0] == 403

        kept = (await teacher.request("board.snapshot_link", board="main", snapshot_id=after))[
            "url"
        ]
        await teacher.end_session("over")
        assert download(server, kept) == (403, b"session_ended: the session has ended\n")
        assert download(server, forged_link(server, "t", before))[0] == 403
    finally:
        await teacher.close()
        await assistant.close()
        await drawer.close()
