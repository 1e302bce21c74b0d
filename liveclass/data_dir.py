"""The data directory (``--data-dir``): the SQLite stores, with chat and private threads in them,
and the token secret. Only the server's user may read it: the directory and every directory under
it 0700, every file 0600.

Two halves: :func:`private_umask` makes every file and directory the process creates from then on
private (SQLite creates ``-wal`` and ``-shm`` files beside each database, and journals and
compaction copies later, so a chmod after opening would miss some); :func:`tighten` fixes what an
earlier version, another tool or a looser umask left behind.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600
#: Masks group and other bits: files are created 0600, directories 0700.
UMASK = 0o077


def private_umask() -> int:
    """Set the process umask to :data:`UMASK`; returns the previous one."""
    return os.umask(UMASK)


def tighten(data_dir: Path) -> list[str]:
    """Take group and other permissions off ``data_dir`` and everything under it: directories
    0700, files 0600. A missing directory is left to whoever makes it (under :func:`private_umask`,
    0700). Symbolic links are left alone (and not followed).

    Returns:
        One line per path changed (``"<path>: 0755 -> 0700"``), for the log.

    Raises:
        OSError: the directory cannot be read or changed.
    """
    if not data_dir.is_dir():
        return []
    changed = [_tighten_one(data_dir, DIR_MODE)]
    for root, dirs, files in os.walk(data_dir):
        for name in dirs:
            changed.append(_tighten_one(Path(root, name), DIR_MODE))
        for name in files:
            changed.append(_tighten_one(Path(root, name), FILE_MODE))
    return [line for line in changed if line]


def _tighten_one(path: Path, mode: int) -> str:
    info = path.lstat()
    if stat.S_ISLNK(info.st_mode):
        return ""
    current = stat.S_IMODE(info.st_mode)
    if not current & ~mode & 0o777:
        return ""
    os.chmod(path, current & mode, follow_symlinks=False)
    return f"{path}: {current:04o} -> {current & mode:04o}"
