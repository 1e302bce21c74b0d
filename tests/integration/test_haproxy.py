"""The shipped HAProxy config (deploy/haproxy/haproxy.cfg) in front of three real embedded
``liveclass serve`` nodes: each connection to the node holding the fewest (``balance leastconn``,
whatever the source address), health checks on ``GET /healthz``, and what happens to clients when
a node dies, hangs or stops.

The node a connection reached is the one whose session count (``stot``) grew: joins run one at a
time; ``scur`` is what each node holds now.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from clients import ClassroomClient
from tests.haproxy import HAProxy, source_address
from tests.server import LiveclassServer

NODES = 3
#: check every 500 ms, fall 2: a dead node (connection refused) is down after about 1 s.
DEAD_DOWN_WITHIN_S = 3.0
#: a hung node fails by check timeout (1 s), twice: about 3 s.
HUNG_DOWN_WITHIN_S = 5.0


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[LiveclassServer]]:
    secret = secrets.token_urlsafe(48)
    started: list[LiveclassServer] = []
    try:
        for i in range(1, NODES + 1):
            data_dir = tmp_path_factory.mktemp(f"node{i}")
            started.append(LiveclassServer(data_dir, secret=secret).start())
        yield started
    finally:
        for node in started:
            if node.proc is not None and node.proc.poll() is None:
                os.kill(node.proc.pid, signal.SIGCONT)
            node.stop()


@pytest.fixture(scope="module")
def running_balancer(
    tmp_path_factory: pytest.TempPathFactory, nodes: list[LiveclassServer]
) -> Iterator[HAProxy]:
    haproxy = HAProxy(tmp_path_factory.mktemp("haproxy"), [("127.0.0.1", n.port) for n in nodes])
    try:
        yield haproxy.start()
    finally:
        haproxy.stop()


@pytest.fixture
def balancer(running_balancer: HAProxy, nodes: list[LiveclassServer]) -> HAProxy:
    """The module's HAProxy with every node running again and UP (a test may have killed one)."""
    for node in nodes:
        if node.proc is None or node.proc.poll() is not None:
            node.start()
    for name in running_balancer.names:
        running_balancer.wait_state(name, "UP", timeout=5.0)
    return running_balancer


async def join_from(
    balancer: HAProxy, node: LiveclassServer, source: str, identity: str | None = None
) -> ClassroomClient:
    """A client joined to room "class" through HAProxy from ``source``; the caller closes it."""
    client = ClassroomClient(
        balancer.ws_url,
        node.token(identity or f"student-{source}"),
        "class",
        reconnect=False,
        local_addr=(source, 0),
        open_timeout=5.0,
    )
    welcome = await client.connect()
    assert welcome["t"] == "welcome"
    return client


async def join_held(
    balancer: HAProxy, node: LiveclassServer, source: str, identity: str
) -> tuple[ClassroomClient, str]:
    """Join from ``source`` and stay; the client and the one server that got the connection."""
    before = balancer.sessions_total()
    client = await join_from(balancer, node, source, identity)
    after = balancer.sessions_total()
    grew = {name: after[name] - before[name] for name in after if after[name] != before[name]}
    assert len(grew) == 1 and next(iter(grew.values())) == 1, grew
    return client, next(iter(grew))


def held(balancer: HAProxy) -> dict[str, int]:
    """Server name -> connections open to it now (``scur``)."""
    return {row["svname"]: int(row["scur"] or 0) for row in balancer.servers()}


async def hold(
    balancer: HAProxy, node: LiveclassServer, count: int, source: str = "127.0.0.1"
) -> list[tuple[ClassroomClient, str]]:
    """``count`` clients joined one at a time and held open, all from ``source``."""
    tag = secrets.token_hex(3)
    return [await join_held(balancer, node, source, f"s{i}-{tag}") for i in range(count)]


async def close_held(clients: list[tuple[ClassroomClient, str]]) -> None:
    await asyncio.gather(*(c.close() for c, _ in clients), return_exceptions=True)


async def wait_held(balancer: HAProxy, name: str, count: int, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while held(balancer)[name] != count:
        assert time.monotonic() < deadline, held(balancer)
        await asyncio.sleep(0.02)


async def test_connections_from_one_address_spread_to_the_least_loaded_node(
    balancer: HAProxy, nodes: list[LiveclassServer]
) -> None:
    # One source address for all, as a school's network behind one NAT: leastconn still spreads.
    clients = await hold(balancer, nodes[0], 4 * NODES)
    try:
        assert sorted(held(balancer).values()) == [4] * NODES
        assert {name for _, name in clients} == set(balancer.names)
    finally:
        await close_held(clients)
    assert all(row["check_status"].removeprefix("* ") == "L7OK" for row in balancer.servers())


async def test_a_killed_node_is_down_within_3s_and_only_its_clients_move(
    balancer: HAProxy, nodes: list[LiveclassServer]
) -> None:
    clients = await hold(balancer, nodes[0], 3 * NODES)
    try:
        victim = balancer.names[0]
        redispatched = int(balancer.stats_of(victim)["wredis"])
        killed_at = time.monotonic()
        nodes[0].kill()
        await wait_held(balancer, victim, 0)
        sessions = balancer.sessions_total()

        # The victim holds the fewest connections now. Before the health checks notice, the
        # connection it refuses is retried on another node at once.
        client = await join_from(balancer, nodes[1], source_address(0))
        await client.close()
        assert balancer.server_states()[victim] != "DOWN"
        assert int(balancer.stats_of(victim)["wredis"]) == redispatched + 1
        grew = {name: n - sessions[name] for name, n in balancer.sessions_total().items()}
        assert sorted(grew.values()) == [0, 1, 1] and grew[victim] == 1, grew

        balancer.wait_state(victim, "DOWN", timeout=DEAD_DOWN_WITHIN_S)
        print(f"killed {victim} marked DOWN after {time.monotonic() - killed_at:.2f}s")
        for c, name in clients:
            await c.wait_until(
                lambda c=c, name=name: (c.closed_with is not None) == (name == victim), 2.0
            )
        after = await hold(balancer, nodes[1], 2)
        assert victim not in {name for _, name in after}
        await close_held(after)
    finally:
        await close_held(clients)


async def test_a_client_of_a_hung_node_is_disconnected_when_it_is_marked_down(
    balancer: HAProxy, nodes: list[LiveclassServer]
) -> None:
    client, victim = await join_held(balancer, nodes[0], source_address(1), "hung-client")
    hung = nodes[balancer.names.index(victim)]
    assert hung.proc is not None
    os.kill(hung.proc.pid, signal.SIGSTOP)
    try:
        # Only the health check can tell: the kernel still accepts connections for the node.
        waited = await asyncio.to_thread(
            balancer.wait_state, victim, "DOWN", timeout=HUNG_DOWN_WITHIN_S
        )
        print(f"hung {victim} marked DOWN after {waited:.2f}s")
        await client.wait_until(lambda: client.closed_with is not None, timeout=2.0)
        other = nodes[(balancer.names.index(victim) + 1) % NODES]
        again, name = await join_held(balancer, other, source_address(1), "hung-client-2")
        assert name != victim
        await again.close()
    finally:
        os.kill(hung.proc.pid, signal.SIGCONT)
        await client.close()


async def test_a_stopped_node_is_down_and_takes_the_new_connections_when_it_is_back(
    balancer: HAProxy, nodes: list[LiveclassServer]
) -> None:
    victim = balancer.names[1]
    stopped = nodes[1]
    stopped.stop()  # SIGTERM: the node drains and closes its port; /healthz is refused
    waited = balancer.wait_state(victim, "DOWN", timeout=DEAD_DOWN_WITHIN_S)
    print(f"stopped {victim} marked DOWN after {waited:.2f}s")
    while_down = await hold(balancer, nodes[0], 4)
    try:
        assert victim not in {name for _, name in while_down}
        stopped.start()
        waited = balancer.wait_state(victim, "UP", timeout=DEAD_DOWN_WITHIN_S)
        print(f"restarted {victim} UP again after {waited:.2f}s")
        # It holds the fewest connections: the next ones go to it until it has caught up.
        back = await hold(balancer, nodes[0], 2)
        assert [name for _, name in back] == [victim, victim]
        await close_held(back)
    finally:
        await close_held(while_down)


class HealthEndpoint(BaseHTTPRequestHandler):
    """A stand-in node that records every request and answers ``self.server.status``."""

    server: HealthServer

    def do_GET(self) -> None:
        self.server.requests.append((self.command, self.path, self.request_version))
        self.send_response(self.server.status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


class HealthServer(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), HealthEndpoint)
        self.status = 200
        self.requests: list[tuple[str, str, str]] = []


@pytest.fixture
def health_server() -> Iterator[HealthServer]:
    server = HealthServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_the_health_check_is_get_healthz_and_needs_a_200(
    tmp_path: Path, health_server: HealthServer
) -> None:
    haproxy = HAProxy(tmp_path / "haproxy", [("127.0.0.1", health_server.server_address[1])])
    try:
        haproxy.start()
        assert health_server.requests
        assert set(health_server.requests) == {("GET", "/healthz", "HTTP/1.1")}

        # The node still accepts TCP connections: only the HTTP status marks it down.
        health_server.status = 503
        haproxy.wait_state("node1", "DOWN", timeout=DEAD_DOWN_WITHIN_S)
        assert haproxy.servers()[0]["check_code"] == "503"

        health_server.status = 200
        haproxy.wait_state("node1", "UP", timeout=DEAD_DOWN_WITHIN_S)
    finally:
        haproxy.stop()
