"""liveclass.data_dir: the data directory and everything in it readable by its owner only."""

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from liveclass.data_dir import private_umask, tighten


@pytest.fixture(autouse=True)
def umask_022() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_tighten_takes_group_and_other_bits_off_every_directory_and_file(tmp_path: Path) -> None:
    (tmp_path / "boards").mkdir(mode=0o775)
    (tmp_path / "events.sqlite3").write_bytes(b"")
    (tmp_path / "boards" / "b.sqlite3").write_bytes(b"")
    os.chmod(tmp_path / "boards" / "b.sqlite3", 0o664)
    (tmp_path / "owner-only").write_bytes(b"")
    os.chmod(tmp_path / "owner-only", 0o400)
    os.chmod(tmp_path, 0o755)
    changed = tighten(tmp_path)
    assert (mode(tmp_path), mode(tmp_path / "boards")) == (0o700, 0o700)
    assert mode(tmp_path / "events.sqlite3") == 0o600
    assert mode(tmp_path / "boards" / "b.sqlite3") == 0o600
    assert mode(tmp_path / "owner-only") == 0o400  # already private: left as it is
    assert f"{tmp_path}: 0755 -> 0700" in changed and len(changed) == 4
    assert tighten(tmp_path) == []


def test_tighten_leaves_symbolic_links_and_their_targets_alone(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.write_bytes(b"")
    os.chmod(outside, 0o644)
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)
    (data_dir / "link").symlink_to(outside)
    assert tighten(data_dir) == []
    assert mode(outside) == 0o644


def test_a_missing_data_dir_is_not_made(tmp_path: Path) -> None:
    assert tighten(tmp_path / "absent") == []
    assert not (tmp_path / "absent").exists()


def test_under_the_private_umask_new_files_are_0600_and_directories_0700(tmp_path: Path) -> None:
    assert private_umask() == 0o022
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f").write_bytes(b"")
    assert (mode(tmp_path / "d"), mode(tmp_path / "d" / "f")) == (0o700, 0o600)
