"""The pure parts of the node's edge: request-target routing, the Origin allow-list, the
per-address budget of failed joins, and the Content-Security-Policy of the web app."""

from __future__ import annotations

import base64
import hashlib
import re
from http import HTTPStatus
from pathlib import Path

import pytest

from liveclass.cli import build_parser
from liveclass.config import WEB_ROOT, ConfigError, ServeConfig, origin_policy
from signaling.http import content_security_policy, inline_script_hashes
from signaling.origins import OriginPolicy, loopback_origins, normalize_origin
from signaling.ratelimit import AddressBuckets
from signaling.request_target import (
    BadTarget,
    BoardTarget,
    HttpTarget,
    SnapshotTarget,
    WsTarget,
    parse_target,
)

# -- request targets ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "route"),
    [
        ("/ws", WsTarget("")),
        ("/ws?v=1", WsTarget("v=1")),
        ("/whiteboard/class/main?token=a.b.c", BoardTarget("class", "main", "token=a.b.c")),
        ("/whiteboard/caf%C3%A9%20r/main", BoardTarget("café r", "main", "")),
        ("/whiteboard/r/b/snapshots/12?token=t", SnapshotTarget("r", "b", "12", "token=t")),
        ("/", HttpTarget("/", "")),
        ("/static/vendor/yjs/dist/yjs.mjs", HttpTarget("/static/vendor/yjs/dist/yjs.mjs", "")),
        ("/dev/join?invite=x", HttpTarget("/dev/join", "invite=x")),
        ("/WS", HttpTarget("/WS", "")),
        ("/Whiteboard/r/b", HttpTarget("/Whiteboard/r/b", "")),
    ],
)
def test_origin_form_targets_are_routed_exactly(target: str, route: object) -> None:
    assert parse_target(target) == route


@pytest.mark.parametrize(
    "target",
    [
        "//x/whiteboard/r/b",
        "//x/ws",
        "http://x/whiteboard/r/b",
        "HTTP://x/ws",
        "ws://x/ws",
        "*",
        "x/ws",
        "",
        "/ws/",
        "/ws//",
        "/whiteboard/r//b",
        "/whiteboard/r/b/",
        "/whiteboard/../ws",
        "/whiteboard/r/./b",
        "/whiteboard/%2E%2E/r/b",
        "/whiteboard/%2e/r/b",
        "/whiteboard/r%2Fx/b",
        "/whiteboard/r%2fx/b",
        "/whiteboard/r%5cx/b",
        "/whiteboard/r%00/b",
        "/whiteboard/r%0a/b",
        "/whiteboard/r%7F/b",
        "/whiteboard/r%/b",
        "/whiteboard/r%2/b",
        "/whiteboard/r%c3/b",
        "/whiteboard/r b/b",
        "/whiteboard/r\\b/b",
        "/whiteboard/r/b\udcff",
        "/ws#frag",
        "/ws?a#frag",
        "/ws?a b",
    ],
)
def test_other_targets_are_bad_requests(target: str) -> None:
    route = parse_target(target)
    assert isinstance(route, BadTarget) and route.status == HTTPStatus.BAD_REQUEST, route


@pytest.mark.parametrize(
    "target",
    [
        "/ws/x",
        "/whiteboard",
        "/whiteboard/r",
        "/whiteboard/r/b/extra",
        "/whiteboard/r/b/snapshots",
        "/whiteboard/r/b/Snapshots/1",
        "/whiteboard/r/b/snapshots/1/x",
    ],
)
def test_well_formed_paths_nothing_serves_are_not_found(target: str) -> None:
    route = parse_target(target)
    assert isinstance(route, BadTarget) and route.status == HTTPStatus.NOT_FOUND, route


# -- origins ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "origin"),
    [
        ("https://Class.Example", "https://class.example"),
        ("https://class.example:443/", "https://class.example"),
        ("http://class.example:80", "http://class.example"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://[::1]:8080", "http://[::1]:8080"),
    ],
)
def test_origins_are_normalized_as_browsers_send_them(text: str, origin: str) -> None:
    assert normalize_origin(text) == origin


@pytest.mark.parametrize(
    "text",
    ["null", "class.example", "ftp://class.example", "https://class.example/app", "https://u@x"],
)
def test_what_is_not_an_http_origin_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        normalize_origin(text)


def test_the_policy_allows_no_origin_or_one_listed_origin_only() -> None:
    policy = OriginPolicy(frozenset({"https://class.example"}))
    assert policy.allows([])
    assert policy.allows(["https://class.example"])
    assert policy.allows(["https://CLASS.example:443"])
    assert not policy.allows(["https://evil.example"])
    assert not policy.allows(["http://class.example"])
    assert not policy.allows(["https://class.example.evil.example"])
    assert not policy.allows(["null"])
    assert not policy.allows(["garbage"])
    assert not policy.allows(["https://class.example", "https://class.example"])


def test_the_default_policy_is_the_public_urls_origin_plus_loopback_when_local() -> None:
    public = origin_policy("", "https://class.example/room/", 8080, loopback=False)
    assert public.allowed == {"https://class.example"}
    local = origin_policy("", "http://127.0.0.1:8080", 8080, loopback=True)
    assert local.allowed == {"http://127.0.0.1:8080", "http://localhost:8080", "http://[::1]:8080"}
    assert local.allowed == loopback_origins("http", 8080)
    listed = origin_policy(
        "https://a.example, https://b.example:8443", "https://c.example", 1, False
    )
    assert listed.allowed == {"https://a.example", "https://b.example:8443", "https://c.example"}
    with pytest.raises(ConfigError, match="--allowed-origins"):
        origin_policy("https://a.example/path", "https://c.example", 1, loopback=False)


# -- failed-join budget per address ---------------------------------------------------------------


def test_each_address_has_its_own_budget_of_failures() -> None:
    budget = AddressBuckets(rate=1.0, burst=2, max_addresses=10)
    assert [budget.take("10.0.0.1", now=0.0) for _ in range(3)] == [0, 0, 1000]
    assert budget.take("10.0.0.2", now=0.0) == 0
    assert budget.take("10.0.0.1", now=1.0) == 0


def test_the_address_table_stays_bounded_forgetting_the_least_recently_seen() -> None:
    budget = AddressBuckets(rate=1.0, burst=1, max_addresses=100)
    budget.take("spent", now=0.0)
    for i in range(10_000):
        budget.take(f"10.0.{i // 256}.{i % 256}", now=0.0)
    assert len(budget) == 100
    assert budget.take("spent", now=0.0) == 0  # forgotten: a full bucket again
    budget.take("recent", now=0.0)
    budget.take("10.0.39.15", now=0.0)  # seen again: the most recent
    for i in range(99):
        budget.take(f"new{i}", now=0.0)
    assert budget.take("10.0.39.15", now=0.0) > 0


# -- content security policy --------------------------------------------------------------------


def test_the_policy_names_the_inline_import_map_of_the_app_by_its_hash() -> None:
    html = (WEB_ROOT / "index.html").read_text()
    bodies = re.findall(r'<script type="importmap">(.*?)</script>', html, re.S)
    assert len(bodies) == 1
    expected = base64.b64encode(hashlib.sha256(bodies[0].encode()).digest()).decode()
    assert inline_script_hashes(html) == [f"'sha256-{expected}'"]
    for page in sorted(Path(WEB_ROOT).glob("*.html")):
        if page.name != "index.html":
            assert inline_script_hashes(page.read_text()) == [], page.name


def test_the_policy_allows_only_this_servers_files_and_no_framing() -> None:
    policy = content_security_policy(["'sha256-abc'"])
    directives = dict(d.split(" ", 1) for d in policy.split("; "))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self' 'sha256-abc'"
    assert directives["frame-ancestors"] == "'none'"
    assert directives["connect-src"] == "'self'"
    assert "unsafe" not in policy


def _serve_config(tmp_path: Path, *argv: str) -> ServeConfig:
    args = build_parser().parse_args(
        ["serve", "--data-dir", str(tmp_path), "--secrets", f"k1:{'s' * 40}", *argv]
    )
    return ServeConfig.from_args(args)


def test_the_serve_flags_build_the_origin_policy(tmp_path: Path) -> None:
    public = _serve_config(tmp_path, "--host", "10.1.2.3", "--public-url", "https://c.example/")
    assert public.node.origins.allowed == {"https://c.example"}
    laptop = _serve_config(tmp_path, "--port", "8080")
    assert laptop.node.origins.allowed == loopback_origins("http", 8080)
    docker = _serve_config(tmp_path, "--host", "0.0.0.0", "--port", "8080")
    assert docker.node.origins.allowed == {"http://0.0.0.0:8080"} | loopback_origins("http", 8080)
    listed = _serve_config(
        tmp_path, "--host", "10.1.2.3", "--allowed-origins", "https://a.example,https://b.example"
    )
    assert listed.node.origins.allowed == {
        "https://a.example",
        "https://b.example",
        "http://10.1.2.3:8080",
    }
    with pytest.raises(ConfigError):
        _serve_config(tmp_path, "--allowed-origins", "evil.example")


def test_the_serve_flags_set_the_failed_join_budget(tmp_path: Path) -> None:
    node = _serve_config(
        tmp_path,
        "--auth-failure-rate-per-s",
        "0.5",
        "--auth-failure-burst",
        "3",
        "--auth-failure-addresses",
        "7",
    ).node
    assert (node.auth_failure_rate_per_s, node.auth_failure_burst) == (0.5, 3.0)
    assert node.auth_failure_addresses == 7
    with pytest.raises(ConfigError):
        _serve_config(tmp_path, "--auth-failure-rate-per-s", "0")


def test_the_small_websocket_limit_has_a_flag(tmp_path: Path) -> None:
    assert _serve_config(tmp_path).node.ws_max_size == 64 * 1024
    assert _serve_config(tmp_path, "--ws-max-message-bytes", "32768").node.ws_max_size == 32768
    with pytest.raises(ConfigError):
        _serve_config(tmp_path, "--ws-max-message-bytes", "1024")
