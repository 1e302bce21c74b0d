"""The status page's pure parts (signaling/admin.py) and the admin token option."""

from __future__ import annotations

from pathlib import Path

import pytest

from liveclass.config import ConfigError, admin_token
from signaling.admin import all_rooms, check_admin_token, is_admin_path, render_status


def node(node_id: str, rooms: dict[str, list[str]]) -> dict[str, object]:
    return {
        "id": node_id,
        "address": f"http://{node_id}",
        "connections": 1,
        "rooms": len(rooms),
        "rooms_open": [
            {
                "room": room,
                "online": len(who),
                "participants": [{"identity": i, "name": i, "role": "student"} for i in who],
            }
            for room, who in rooms.items()
        ],
        "version": "1",
        "started": "2026-01-01T00:00:00Z",
        "ready": True,
    }


def status(*nodes: dict[str, object]) -> dict[str, object]:
    return {
        "mode": "cluster",
        "version": "1",
        "at": "now",
        "nodes": list(nodes),
        "sfu_workers": [],
        "redis": {"cluster_state": "ok"},
    }


def test_rooms_merge_their_participants_over_the_nodes() -> None:
    merged = all_rooms(status(node("n1", {"a": ["x"], "b": ["y"]}), node("n2", {"a": ["z"]})))
    assert [(r["room"], r["online"]) for r in merged] == [("a", 2), ("b", 1)]
    assert [(p["identity"], p["node"]) for p in merged[0]["participants"]] == [
        ("x", "n1"),
        ("z", "n2"),
    ]


def test_the_page_escapes_every_value_and_has_no_script() -> None:
    page = render_status(status(node("<script>alert(1)</script>", {"<b>&": ["<i>"]})))
    assert "<script" not in page and "&lt;script&gt;" in page and "&lt;b&gt;&amp;" in page
    assert "cluster_state" in page


def test_admin_paths() -> None:
    assert is_admin_path("/status") and is_admin_path("/status.json")
    assert is_admin_path("/admin/rooms") and not is_admin_path("/statusx")
    assert not is_admin_path("/administrator")


def test_the_admin_token_is_off_empty_or_long_enough(tmp_path: Path) -> None:
    assert check_admin_token("  ") == ""
    with pytest.raises(ValueError):
        check_admin_token("short")
    token_file = tmp_path / "admin-token"
    token_file.write_text("a" * 20 + "\n")
    assert admin_token({"admin_token_file": str(token_file), "admin_token": ""}) == "a" * 20
    assert admin_token({"admin_token_file": "", "admin_token": "b" * 16}) == "b" * 16
    with pytest.raises(ConfigError):
        admin_token({"admin_token_file": str(tmp_path / "missing"), "admin_token": ""})
    with pytest.raises(ConfigError):
        admin_token({"admin_token_file": "", "admin_token": "tiny"})
