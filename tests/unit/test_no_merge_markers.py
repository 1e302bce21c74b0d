"""No file the repository tracks holds a merge's conflict markers (a merge resolved in a hurry
can leave them in a doc, where no parser complains)."""

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MARKERS = ("<<<<<<< ", ">>>>>>> ")
TEXT = {".py", ".md", ".js", ".mjs", ".html", ".css", ".toml", ".sh", ".cfg", ".yml", ".yaml"}


def test_no_tracked_text_file_holds_conflict_markers() -> None:
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.split(b"\0")
    found = []
    for name in filter(None, tracked):
        path = ROOT / name.decode()
        if path.suffix not in {
            ".py",
            ".md",
            ".js",
            ".mjs",
            ".html",
            ".css",
            ".toml",
            ".sh",
            ".cfg",
        }:
            continue
        if not path.is_file():
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
            if line.startswith(MARKERS) or (line == "=======" and path.suffix != ".md"):
                found.append(f"{name.decode()}:{number}")
    assert not found, f"conflict markers: {found}"
