"""Request targets against a real ``liveclass serve``: only origin-form ``/ws``,
``/whiteboard/<room>/<board>`` and the HTTP endpoints are served; every other form gets a clean
400 or 404 before any upgrade; a WebSocket's message limit is the small one (``ws_max_size``,
64 KiB) until a whiteboard token has verified; and anonymous connections trying to send 30 MB
are closed (1009) without the server's memory growing (docs/operations.md, "Requests, origins
and headers")."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from pycrdt import Array, Doc

from tests.integration.raw_ws import (
    CONTINUATION,
    RawConnection,
    frame,
    frame_header,
    open_raw,
)
from tests.integration.yboard import YClient, board_url
from tests.server import LiveclassServer
from whiteboard.protocol import encode_update

SMALL_LIMIT = 64 * 1024
OVER_SMALL = 100 * 1024
SECURITY_HEADERS = (
    "content-security-policy",
    "x-frame-options",
    "x-content-type-options",
    "referrer-policy",
)


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveclassServer]:
    server = LiveclassServer(Path(tmp_path_factory.mktemp("targets")), ("--no-media",))
    server.start()
    yield server
    server.stop()


REFUSED = [
    ("//x/ws", 400),
    ("//x/whiteboard/class/main", 400),
    ("//127.0.0.1/ws", 400),
    ("http://x/ws", 400),
    ("http://x/whiteboard/class/main", 400),
    ("ws://127.0.0.1/ws", 400),
    ("*", 400),
    ("/ws/", 400),
    ("/ws/.", 400),
    ("/./ws", 400),
    ("/x/../ws", 400),
    ("/whiteboard/class/../main", 400),
    ("/whiteboard/%2e%2e/class/main", 400),
    ("/whiteboard/class%2Fmain/main", 400),
    ("/whiteboard/class%2fmain/main", 400),
    ("/whiteboard/class%5Cmain/main", 400),
    ("/whiteboard/class/main%00", 400),
    ("/whiteboard/class/%zz", 400),
    ("/whiteboard/class/%ff", 400),
    ("/whiteboard//class/main", 400),
    ("/whiteboard/class/main/", 400),
    ("/ws#x", 400),
    ("/WS", 404),
    ("/Ws", 404),
    ("/Whiteboard/class/main", 404),
    ("/WHITEBOARD/class/main", 404),
    ("/whiteboard/class", 404),
    ("/whiteboard/class/main/extra", 404),
    ("/whiteboard/class/main/snapshots", 404),
    ("/ws.json", 404),
]


@pytest.mark.parametrize(("target", "status"), REFUSED, ids=[t for t, _ in REFUSED])
async def test_a_target_that_is_not_origin_form_ws_or_board_is_refused_before_any_upgrade(
    shared_server: LiveclassServer, target: str, status: int
) -> None:
    conn = await open_raw(shared_server.port, target)
    try:
        assert conn.response is not None, f"{target}: closed without an answer"
        assert conn.response.status == status, f"{target}: {conn.response}"
        for name in SECURITY_HEADERS:
            assert name in conn.response.headers, f"{target}: no {name}"
    finally:
        await conn.aclose()


@pytest.mark.parametrize(
    "target", ["/ws", "/ws?x=1", "/whiteboard/class/main", "/whiteboard/class/main?token=junk"]
)
async def test_an_accepted_target_keeps_the_small_limit_before_authentication(
    shared_server: LiveclassServer, target: str
) -> None:
    conn = await open_raw(shared_server.port, target)
    try:
        assert conn.response is not None and conn.response.status == 101, conn.response
        await conn.send(frame(b"\0" * OVER_SMALL))
        code = await conn.close_code()
        # A board connection without a valid token may be closed for its token (4401) first;
        # either way nothing over the small limit is read.
        assert code in ((1009,) if target.startswith("/ws") else (1009, 4401)), code
    finally:
        await conn.aclose()


async def test_a_board_message_sent_before_its_token_verified_is_not_read_past_the_small_limit(
    shared_server: LiveclassServer,
) -> None:
    token = shared_server.token("t1", "teacher")
    message = frame(encode_update(_update(OVER_SMALL)))
    conn = await open_raw(
        shared_server.port, f"/whiteboard/class/early?token={token}", pipelined=message
    )
    try:
        if conn.response is not None:
            assert conn.response.status != 101 or await conn.close_code() in (None, 1009)
    finally:
        await conn.aclose()
    reader = await YClient.open(board_url(shared_server, token, board="early"))
    try:
        await reader.sync()
        assert reader.contents() == []
    finally:
        await reader.close()


async def test_a_board_message_over_the_small_limit_is_accepted_once_the_token_verified(
    shared_server: LiveclassServer,
) -> None:
    token = shared_server.token("t1", "teacher")
    writer = await YClient.open(board_url(shared_server, token, board="large"))
    try:
        await writer.sync()
        update = _update(4 * SMALL_LIMIT)
        assert len(update) > 4 * SMALL_LIMIT
        await writer.ws.send(encode_update(update))
        reader = await YClient.open(board_url(shared_server, token, board="large"))
        try:
            await reader.sync()
            await reader.wait_until(lambda: len(reader.contents()) == 1, "the large record")
        finally:
            await reader.close()
        assert writer.close_code is None
    finally:
        await writer.close()


def _update(size: int) -> bytes:
    doc = Doc()
    captured: list[bytes] = []
    doc.observe(lambda event: captured.append(event.update))
    doc.get("records", type=Array).append({"key": "big", "val": {"text": "x" * size}})
    return captured[0]


# -- memory -------------------------------------------------------------------------------------

ATTEMPT = 30 * 1000 * 1000
FRAGMENT = 1024 * 1024


def _rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


async def _flood(port: int, target: str, *, fragmented: bool) -> str:
    """Open ``target`` and try to send one 30 MB message; the outcome: ``http <status>`` when
    refused, ``close <code>`` when closed, ``held`` when the server kept the connection."""
    conn: RawConnection = await open_raw(port, target)
    try:
        if conn.response is None:
            return "closed before answering"
        if conn.response.status != 101:
            return f"http {conn.response.status}"
        closing = asyncio.ensure_future(conn.close_code(timeout=10))
        chunk = b"\0" * FRAGMENT
        if fragmented:
            # Non-final fragments of one message: it is never finished.
            sent, opcode = 0, 0x2
            while sent < ATTEMPT and not closing.done():
                if not await conn.send(frame_header(FRAGMENT, opcode, fin=False) + chunk):
                    break
                sent, opcode = sent + FRAGMENT, CONTINUATION
        else:
            sent = 0
            if await conn.send(frame_header(ATTEMPT)):
                while sent < ATTEMPT and not closing.done():
                    if not await conn.send(chunk):
                        break
                    sent += FRAGMENT
        try:
            return f"close {await closing}"
        except TimeoutError:
            return "held"
    finally:
        await conn.aclose()


async def test_anonymous_connections_trying_to_send_30_mb_are_closed_and_memory_stays_flat(
    tmp_path: Path,
) -> None:
    server = LiveclassServer(tmp_path, ("--no-media",)).start()
    assert server.proc is not None
    pid = server.proc.pid
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _rss_bytes(pid))
            done.wait(0.02)

    try:
        warm = await open_raw(server.port, "/ws")
        await warm.aclose()
        await asyncio.sleep(0.2)
        before = _rss_bytes(pid)
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        forms = [
            ("/ws", False),
            ("/ws", True),
            ("/whiteboard/class/main", False),
            ("//x/whiteboard/class/main", False),
            ("http://x/whiteboard/class/main", True),
        ]
        outcomes = await asyncio.gather(
            *(_flood(server.port, target, fragmented=f) for target, f in forms * 4)
        )
        await asyncio.sleep(0.3)
        done.set()
        sampler.join()
        grown = max(peak[0], _rss_bytes(pid)) - before
        print(f"RSS {before / 2**20:.1f} MiB, grew {grown / 2**20:.1f} MiB: {set(outcomes)}")
        expected = {"/ws": {"close 1009"}, "/whiteboard/class/main": {"close 1009", "close 4401"}}
        for (target, fragmented), outcome in zip(forms * 4, outcomes, strict=True):
            allowed = expected.get(target, {"http 400"})
            assert outcome in allowed, f"{target} fragmented={fragmented}: {outcome}"
        assert grown < 50 * 1024 * 1024, f"RSS grew {grown / 2**20:.0f} MiB"
    finally:
        done.set()
        server.stop()
