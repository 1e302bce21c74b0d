"""No token reaches a log, in either log format: a server at debug level serves a join, a
whiteboard connection (token in the query, as y-websocket sends it), a snapshot link and its
download, and refused tokens, and its log holds none of those tokens."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Callable

import pytest

from clients import ClassroomClient
from tests.integration.yboard import YClient, board_url
from tests.server import LiveclassServer


def get(server: LiveclassServer, path: str) -> int:
    try:
        with urllib.request.urlopen(f"{server.http_url}{path}", timeout=5) as r:
            return int(r.status)
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.mark.parametrize("log_format", ["text", "json"])
async def test_a_debug_level_server_logs_no_token(
    make_server: Callable[..., LiveclassServer], log_format: str
) -> None:
    server = make_server("--log-level", "debug", "--log-format", log_format)
    teacher_token = server.token("t", "teacher")
    student_token = server.token("alice")
    expired_token = server.token("bob", ttl_s=10, now=1_000_000)
    teacher = ClassroomClient(server.ws_url, teacher_token, "class", reconnect=False)
    await teacher.connect()
    board = await YClient.open(board_url(server, student_token))
    link = ""
    try:
        await board.sync()
        await board.draw("kept", type="line")
        snapshot_id = int((await teacher.snapshot_board())["ids"][0])
        link = str(
            (await teacher.request("board.snapshot_link", board="main", snapshot_id=snapshot_id))[
                "url"
            ]
        )
        get(server, link)
        get(server, f"/whiteboard/class/main/snapshots/{snapshot_id}?token={teacher_token}")
        refused = await YClient.open(board_url(server, expired_token))
        await refused.wait_closed()
    finally:
        await teacher.close()
        await board.close()
    server.stop()

    assert server.log_path is not None
    log = server.log_path.read_text(errors="replace")
    debug = " DEBUG " if log_format == "text" else '"level": "DEBUG"'
    assert debug in log, "the server did not log at debug level"
    assert "GET /whiteboard/class/main" in log, "the request lines were not logged at all"
    assert "token=<redacted>" in log, "the request lines were not redacted but dropped"
    link_token = link.partition("token=")[2]
    assert link_token
    for name, token in [
        ("teacher", teacher_token),
        ("student", student_token),
        ("expired", expired_token),
        ("snapshot link", link_token),
    ]:
        for part in token.split("."):  # not even the signature or the claims alone
            assert part not in log, f"the {name} token is in the server's log"
