"""A page refused with ``rate_limited`` in a join storm joins again by itself, in real Chromium
against a real ``liveclass serve`` that admits one join every five seconds."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, WebSocket, expect

from tests.e2e.conftest import Tab
from tests.server import LiveclassServer

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

WAIT_MS = 30_000


@pytest.fixture
def server(make_server: Callable[..., LiveclassServer]) -> LiveclassServer:
    # One join per 5 s: the three pages' joins fall within one window even on a loaded machine.
    return make_server("--join-rate-per-s", "0.2", "--join-burst", "1")


def refused_joins(server: LiveclassServer) -> float:
    _, body, _ = server.get("/metrics")
    found = re.search(rb'liveclass_join_rejections_total\{code="rate_limited"\} (\S+)', body)
    return float(found.group(1)) if found else 0.0


def test_a_rate_limited_page_joins_again_by_itself(
    open_tab: Callable[..., Tab], server: LiveclassServer
) -> None:
    sockets: dict[str, list[str]] = {}

    def count_sockets(label: str) -> Callable[[Page], None]:
        def install(page: Page) -> None:
            def opened(ws: WebSocket) -> None:
                if ws.url.endswith("/ws"):
                    sockets.setdefault(label, []).append(ws.url)

            page.on("websocket", opened)

        return install

    teacher = open_tab("teacher", "t-rivera", "teacher", name="Ms Rivera")
    ada = open_tab("student A", "s-ada", name="Ada", before_load=count_sockets("ada"))
    bo = open_tab("student B", "s-bo", name="Bo", before_load=count_sockets("bo"))
    for tab in (teacher, ada, bo):
        expect(tab.by("conn-state")).to_have_attribute("data-state", "live", timeout=WAIT_MS)
    expect(teacher.by("online-count")).to_have_text("3 online", timeout=WAIT_MS)
    # Three joins within a few seconds of each other, one admitted per 5 s: pages were refused and
    # joined later without a reload or a new token.
    assert refused_joins(server) >= 2
    # ... on the socket they had: the join is sent again, not the connection torn down.
    assert [len(sockets.get(name, [])) for name in ("ada", "bo")] == [1, 1], sockets
    for tab in (teacher, ada, bo):
        assert tab.errors == [], f"{tab.label} page logged errors: {tab.errors}"
