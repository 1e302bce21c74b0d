"""Security headers on every HTTP answer and the Origin allow-list of the WebSocket endpoints,
against a real ``liveclass serve`` (docs/operations.md, "Requests, origins and headers")."""

from __future__ import annotations

import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.integration.raw_ws import open_raw
from tests.server import LiveclassServer

EVIL = "https://evil.example"


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveclassServer]:
    server = LiveclassServer(Path(tmp_path_factory.mktemp("origins")), ("--no-media",))
    server.start()
    yield server
    server.stop()


def _get(
    server: LiveclassServer, path: str, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    request = urllib.request.Request(f"{server.http_url}{path}", headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as r:
            return r.status, r.headers
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers


def _assert_secured(headers: Any, what: str) -> None:
    fields = {name.lower(): value for name, value in headers.items()}
    get = fields.get
    policy = get("content-security-policy") or ""
    assert "frame-ancestors 'none'" in policy, f"{what}: CSP {policy!r}"
    assert "default-src 'none'" in policy and "'unsafe-inline'" not in policy, what
    assert get("x-frame-options") == "DENY", what
    assert get("referrer-policy") == "no-referrer", what
    assert get("x-content-type-options") == "nosniff", what


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/", 200),
        ("/static/app.js", 200),
        ("/static/vendor/yjs-stack.js", 200),
        ("/healthz", 200),
        ("/metrics", 200),
        ("/no-such-page", 404),
        ("/static/no-such-file.js", 404),
        ("/dev", 404),
        ("/whiteboard/class/main/snapshots/1?token=junk", 403),
        ("/ws", 426),
    ],
)
def test_every_http_answer_carries_the_security_headers(
    shared_server: LiveclassServer, path: str, status: int
) -> None:
    got, headers = _get(shared_server, path)
    assert got == status, path
    _assert_secured(headers, path)


def test_a_not_modified_answer_carries_the_security_headers(
    shared_server: LiveclassServer,
) -> None:
    status, headers = _get(shared_server, "/static/app.js")
    assert status == 200
    status, headers = _get(shared_server, "/static/app.js", {"If-None-Match": headers["ETag"]})
    assert status == 304
    _assert_secured(headers, "304")


async def test_a_refused_request_target_carries_the_security_headers(
    shared_server: LiveclassServer,
) -> None:
    conn = await open_raw(shared_server.port, "http://x/ws")
    try:
        assert conn.response is not None and conn.response.status == 400
        _assert_secured(conn.response.headers, "400")
    finally:
        await conn.aclose()


def _endpoints(server: LiveclassServer) -> dict[str, str]:
    token = server.token("s1")
    return {
        "ws": server.ws_url,
        "whiteboard": f"ws://127.0.0.1:{server.port}/whiteboard/class/main?token={token}",
    }


@pytest.mark.parametrize("endpoint", ["ws", "whiteboard"])
async def test_a_websocket_from_another_origin_is_refused_with_403(
    shared_server: LiveclassServer, endpoint: str
) -> None:
    url = _endpoints(shared_server)[endpoint]
    for origin in (EVIL, "null", f"http://127.0.0.1:{shared_server.port + 1}"):
        with pytest.raises(InvalidStatus) as refused:
            await connect(url, origin=origin, open_timeout=5)  # type: ignore[arg-type]
        assert refused.value.response.status_code == 403, origin
        _assert_secured(refused.value.response.headers, f"{endpoint} 403")


@pytest.mark.parametrize("endpoint", ["ws", "whiteboard"])
@pytest.mark.parametrize("origin", ["own", "localhost", None])
async def test_a_websocket_from_the_servers_own_origin_or_with_no_origin_is_accepted(
    shared_server: LiveclassServer, endpoint: str, origin: str | None
) -> None:
    port = shared_server.port
    sent = {"own": f"http://127.0.0.1:{port}", "localhost": f"http://localhost:{port}"}
    header = sent.get(origin or "")
    ws = await connect(_endpoints(shared_server)[endpoint], origin=header, open_timeout=5)  # type: ignore[arg-type]
    try:
        if endpoint == "ws":
            token = shared_server.token("s1")
            await ws.send(msgpack.packb({"t": "join", "token": token, "room": "class"}))
            welcome = msgpack.unpackb(await ws.recv())
            assert welcome["t"] == "welcome", welcome
        else:
            assert isinstance(await ws.recv(), bytes)  # the server's sync step 1
    finally:
        await ws.close()


async def test_allowed_origins_adds_origins_and_keeps_the_public_urls(
    make_server: Callable[..., LiveclassServer],
) -> None:
    server = make_server(
        "--no-media",
        "--public-url",
        "https://class.example/",
        "--allowed-origins",
        "https://other.example:8443",
    )
    accepted = ["https://class.example", "https://other.example:8443"]
    for origin in accepted:
        ws = await connect(server.ws_url, origin=origin, open_timeout=5)  # type: ignore[arg-type]
        await ws.close()
    for origin in (EVIL, "https://other.example", f"http://127.0.0.1:{server.port + 1}"):
        with pytest.raises(InvalidStatus) as refused:
            await connect(server.ws_url, origin=origin, open_timeout=5)  # type: ignore[arg-type]
        assert refused.value.response.status_code == 403, origin
