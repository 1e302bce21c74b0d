"""The data directory holds chat, private threads and the token secret: a real ``liveclass serve``
keeps it 0700 and every file in it 0600 (docs/operations.md, "Security", "Data directory"), even
started under umask 022 on a directory an earlier run left world-readable."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from clients.sdk import ClassroomClient
from tests.server import LiveclassServer


@pytest.fixture
def umask_022() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def modes(data_dir: Path) -> dict[str, str]:
    """Every path under ``data_dir`` (itself as ".") with its permission bits, in octal."""
    found = {".": f"{stat.S_IMODE(data_dir.stat().st_mode):04o}"}
    for path in sorted(data_dir.rglob("*")):
        found[str(path.relative_to(data_dir))] = f"{stat.S_IMODE(path.lstat().st_mode):04o}"
    return found


async def test_data_dir_is_0700_and_its_files_0600_after_a_join_and_a_chat_message(
    tmp_path: Path, umask_022: None
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o755)
    leftover = data_dir / "events.sqlite3.bak"
    leftover.write_bytes(b"")
    os.chmod(leftover, 0o644)
    server = LiveclassServer(data_dir).start()
    try:
        async with ClassroomClient(server.ws_url, server.token("t1", "teacher"), "class") as c:
            await c.chat("hello")
        found = modes(data_dir)
    finally:
        server.stop()
    assert {"events.sqlite3", "events.sqlite3-wal", "whiteboards.sqlite3"} <= found.keys(), found
    loose = {
        path: mode
        for path, mode in found.items()
        if mode != ("0700" if (data_dir / path).is_dir() else "0600")
    }
    assert not loose, f"readable by others under {data_dir}: {loose}"
    assert "tightened" in server.log() and "0755 -> 0700" in server.log()
