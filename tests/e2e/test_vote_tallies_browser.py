"""The classroom page in real Chromium shows vote counts from `tally` frames in a large room
(docs/protocol.md, "Vote tallies"): the other participants' votes reach it as tallies, not as
events, and its own vote still marks the question voted."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import msgpack
import pytest
from playwright.sync_api import WebSocket, expect
from websockets.sync.client import ClientConnection, connect

from tests.e2e.conftest import Tab
from tests.server import LiveclassServer

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

WAIT_MS = 10_000
VOTERS = 3


@pytest.fixture
def server(make_server: Callable[..., LiveclassServer]) -> LiveclassServer:
    """Above two online the room is large: the page, the teacher and the voters make five."""
    return make_server("--large-room", "2")


@contextmanager
def joined(
    server: LiveclassServer, identity: str, role: str = "student"
) -> Iterator[ClientConnection]:
    """A plain WebSocket client joined to the class (no browser: the page is the one watched)."""
    with connect(server.ws_url, compression=None, max_size=None) as ws:
        ws.send(
            msgpack.packb({"t": "join", "token": server.token(identity, role), "room": "class"})
        )
        until(ws, lambda frame: frame["t"] == "welcome")
        yield ws


def until(ws: ClientConnection, wanted: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """The first frame ``wanted`` accepts (each read bounded by 10 s)."""
    while True:
        frame = msgpack.unpackb(ws.recv(timeout=10))
        if wanted(frame):
            return frame


def command(ws: ClientConnection, ref: int, **fields: Any) -> dict[str, Any]:
    ws.send(msgpack.packb({"ref": ref, **fields}))
    answer = until(ws, lambda frame: frame["t"] in ("ack", "error") and frame["ref"] == ref)
    assert answer["t"] == "ack", answer
    return answer


def test_the_page_shows_counts_from_tallies_in_a_large_room(
    open_tab: Callable[..., Tab], server: LiveclassServer
) -> None:
    received: list[dict[str, Any]] = []

    def watch(socket: WebSocket) -> None:
        if not socket.url.endswith("/ws"):
            return  # the whiteboard's y-websocket connection speaks another protocol
        socket.on("framereceived", lambda payload: received.append(msgpack.unpackb(payload)))

    page = open_tab("student", "s-web", name="Web", before_load=lambda p: p.on("websocket", watch))
    expect(page.by("conn-state")).to_have_attribute("data-state", "live", timeout=WAIT_MS)
    with ExitStack() as stack:
        teacher = stack.enter_context(joined(server, "t", "teacher"))
        command(teacher, 1, t="question.ask", text="Is merge sort stable?")
        question = 1  # question ids are numbered from 1 per room
        expect(page.by("qa-item")).to_have_count(1, timeout=WAIT_MS)
        page.show_panel("qa")

        voters = [stack.enter_context(joined(server, f"s{i}")) for i in range(VOTERS)]
        expect(page.by("online-count")).to_have_text(f"{VOTERS + 2} online", timeout=WAIT_MS)
        for ws in voters:
            command(ws, 1, t="question.upvote", question_id=question)
        expect(page.by("qa-votes")).to_have_text(str(VOTERS), timeout=WAIT_MS)
        expect(page.by("qa-upvote")).to_have_attribute("aria-pressed", "false", timeout=WAIT_MS)

        page.by("qa-upvote").click()
        expect(page.by("qa-votes")).to_have_text(str(VOTERS + 1), timeout=WAIT_MS)
        expect(page.by("qa-upvote")).to_have_attribute("aria-pressed", "true", timeout=WAIT_MS)

    votes = [f for f in received if f["t"] == "event" and f["type"].startswith("question.")]
    assert [(f["type"], f["data"].get("identity")) for f in votes[1:]] == [
        ("question.upvoted", "s-web")
    ], "the page got other participants' votes as events"
    tallies = [f for f in received if f["t"] == "tally"]
    assert tallies and tallies[-1]["questions"] == [{"question_id": question, "votes": VOTERS}]
    assert page.errors == []
