"""Breakout rooms' whiteboards over a real ``liveclass serve`` with pycrdt (Yrs) y-websocket clients
(issue 16): each breakout room draws on a board of its own (``br<round>-<i>``), a drawing on one
never appears on another, a moved student's board connection is closed (4404) and the new room's
board opens, and after the rooms close every board is kept as it was: a read-only gallery for
staff, and for students only while staff share it.

Run embedded (one process, SQLite) and on two ``liveclass serve --redis-cluster`` nodes of a real
Redis Cluster, where the members of one breakout room are on different nodes and every board is
read through each node."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from clients import ClassroomClient
from tests.integration.yboard import YClient, board_url
from tests.redis_cluster import RedisCluster
from tests.server import LiveclassServer
from whiteboard.protocol import PermissionDenied

pytestmark = pytest.mark.timeout(90)

#: The room (board_url's default); a cluster module's other tests use rooms of their own.
ROOM = "class"

ROOMS = ["Red team", "Blue team", "Green"]
STUDENTS = {"ann": "Red team", "ben": "Red team", "cat": "Blue team", "dan": "Green"}
#: close code of a board connection the participant may no longer open (docs/protocol.md)
NOT_YOUR_BOARD = 4404


def node_of(servers: list[LiveclassServer], identity: str) -> LiveclassServer:
    """The node ``identity`` connects to: the teacher to the first, the students in turn (so
    each two-student breakout room spans both nodes of a cluster)."""
    order = ["teacher", *STUDENTS]
    return servers[order.index(identity) % len(servers)]


class Boards:
    """The board connections a test opens, by (identity, board); all closed after it."""

    def __init__(self, servers: list[LiveclassServer]) -> None:
        self.servers = servers
        self.open: dict[tuple[str, str], YClient] = {}

    def url(self, identity: str, board: str, server: LiveclassServer | None = None) -> str:
        server = server or node_of(self.servers, identity)
        role = "teacher" if identity == "teacher" else "student"
        return board_url(server, server.token(identity, role), board=board)

    async def connect(self, identity: str, board: str) -> YClient:
        client = await YClient.open(self.url(identity, board))
        self.open[identity, board] = client
        return client

    async def synced(self, identity: str, board: str) -> YClient:
        client = await self.connect(identity, board)
        await client.sync()
        return client

    async def refused(self, identity: str, board: str) -> int | None:
        return await (await self.connect(identity, board)).wait_closed()

    async def contents(self, board: str) -> list[str]:
        """The keys drawn on ``board``, as a staff member joining now sees them through each
        node (the same on every one)."""
        seen = []
        for server in self.servers:
            client = await YClient.open(self.url("teacher", board, server))
            try:
                await client.sync()
                seen.append(keys_of(client))
            finally:
                await client.close()
        assert all(keys == seen[0] for keys in seen), f"{board}: the nodes disagree: {seen}"
        return seen[0]

    async def close(self) -> None:
        for client in self.open.values():
            await client.close()


@pytest.fixture(params=["embedded", "cluster"])
def servers(
    request: pytest.FixtureRequest,
    make_server: Callable[..., LiveclassServer],
    tmp_path: Path,
) -> Iterator[list[LiveclassServer]]:
    """One embedded server, or two nodes on the (module's) Redis Cluster sharing a secret."""
    if request.param == "embedded":
        yield [make_server()]
        return
    cluster: RedisCluster = request.getfixturevalue("cluster")
    secret = secrets.token_urlsafe(32)
    started: list[LiveclassServer] = []
    try:
        for i in (1, 2):
            args = ["--redis-cluster", cluster.seeds, "--node-id", f"node{i}"]
            node = LiveclassServer(tmp_path / f"node{i}", args, secret=secret)
            node.data_dir.mkdir(parents=True)
            started.append(node)
            node.start()
        yield started
    finally:
        for node in started:
            node.stop()


@pytest.fixture
async def boards(servers: list[LiveclassServer]) -> AsyncIterator[Boards]:
    made = Boards(servers)
    yield made
    await made.close()


def keys_of(client: YClient) -> list[Any]:
    return sorted(record["key"] for record in client.contents())


async def joined(
    servers: list[LiveclassServer], identity: str, role: str = "student"
) -> ClassroomClient:
    server = node_of(servers, identity)
    client = ClassroomClient(server.ws_url, server.token(identity, role), ROOM)
    await client.connect()
    return client


async def draw_refused(client: YClient, key: str) -> None:
    denied = client.count(PermissionDenied)
    await client.draw(key)
    await client.wait_until(lambda: client.count(PermissionDenied) > denied, "permission denied")


async def test_breakout_boards_stay_apart_follow_moves_and_are_kept_after_closing(
    servers: list[LiveclassServer], boards: Boards
) -> None:
    teacher = await joined(servers, "teacher", "teacher")
    students = {identity: await joined(servers, identity) for identity in STUDENTS}
    try:
        await teacher.request("breakout.open", rooms=ROOMS, members=STUDENTS)
        opened = await teacher.wait_for(lambda e: e.type == "breakout.opened")
        assert opened.data["boards"] == ["br1-1", "br1-2", "br1-3"]
        board_of = dict(zip(ROOMS, opened.data["boards"], strict=True))
        red, blue, green = (board_of[room] for room in ROOMS)

        # Each student draws on their room's board; no other breakout board opens for them.
        drawn: dict[str, list[str]] = {board: [] for board in board_of.values()}
        for identity, room in STUDENTS.items():
            mine = await boards.synced(identity, board_of[room])
            await mine.draw(f"{identity}-1")
            drawn[board_of[room]].append(f"{identity}-1")
            other = next(board for board in drawn if board != board_of[room])
            assert await boards.refused(identity, other) == NOT_YOUR_BOARD
        # Staff draw on every open breakout room's board.
        for board in drawn:
            await (await boards.synced("teacher", board)).draw(f"teacher-{board}")
            drawn[board].append(f"teacher-{board}")
        for board, keys in drawn.items():
            assert await boards.contents(board) == sorted(keys), board
        # What was relayed live to each student is their own board's, and nothing else.
        for identity, room in STUDENTS.items():
            live = boards.open[identity, board_of[room]]
            expected = sorted(drawn[board_of[room]])
            await live.wait_until(lambda live=live, e=expected: keys_of(live) == e, identity)
        # A student in a breakout room reads main and does not draw on it.
        main = await boards.synced("ann", "main")
        await draw_refused(main, "ann-on-main")

        # Moved from red to blue: red's connection closes, blue's board is hers.
        await teacher.request("breakout.move", identity="ben", room="Blue team")
        assert await boards.open["ben", red].wait_closed() == NOT_YOUR_BOARD
        assert main.close_code is None
        ben_blue = await boards.synced("ben", blue)
        assert keys_of(ben_blue) == sorted(drawn[blue])
        await ben_blue.draw("ben-2")
        drawn[blue].append("ben-2")

        # A mass move: cat to green, dan back to the main room; one command, both closed.
        await teacher.request("breakout.assign", members={"cat": "Green", "dan": None})
        assert await boards.open["cat", blue].wait_closed() == NOT_YOUR_BOARD
        assert await boards.open["dan", green].wait_closed() == NOT_YOUR_BOARD
        await (await boards.synced("cat", green)).draw("cat-2")
        drawn[green].append("cat-2")
        await (await boards.synced("dan", "main")).draw("dan-main")

        # Closing: every student's breakout board connection closes; main is theirs again.
        await teacher.request("breakout.close")
        for identity, board in (("ann", red), ("ben", blue), ("cat", green)):
            assert await boards.open[identity, board].wait_closed() == NOT_YOUR_BOARD
        # Every breakout board is kept as it was, each with only its own drawings.
        for board, keys in drawn.items():
            assert await boards.contents(board) == sorted(keys), board
        assert await boards.contents("main") == ["dan-main"]
        # Staff read the gallery; nobody writes on it.
        gallery = await boards.synced("teacher", red)
        await draw_refused(gallery, "teacher-late")
        # Students see it only while staff share it.
        assert await boards.refused("ann", red) == NOT_YOUR_BOARD
        await teacher.request("breakout.share_boards", shared=True)
        shared = await boards.synced("ann", red)
        assert keys_of(shared) == sorted(drawn[red])
        await draw_refused(shared, "ann-late")
        await teacher.request("breakout.share_boards", shared=False)
        assert await shared.wait_closed() == NOT_YOUR_BOARD
        await asyncio.sleep(0.2)
        for board, keys in drawn.items():
            assert await boards.contents(board) == sorted(keys), board
    finally:
        for client in (teacher, *students.values()):
            await client.close()
