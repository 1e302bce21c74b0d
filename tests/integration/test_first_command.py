"""The README's first command, `bash scripts/serve.sh`, on a machine where Node.js does not work:
it installs only the runtime (requirements-runtime.lock; no test toolchain) and serves the page.

The command runs in a copy of this checkout (its own ``.venv``), with ``node`` and ``npm`` on
PATH as shims that record their call and exit 1. pip installs offline (``PIP_NO_INDEX``) from the
wheels ``scripts/bootstrap.sh`` keeps in ``.venv/runtime-wheels`` (the runtime lock and the build
backend), so the test needs no network and takes about half a minute.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.server import free_port

pytestmark = pytest.mark.timeout(300)

ROOT = Path(__file__).resolve().parents[2]
WHEELS = ROOT / ".venv" / "runtime-wheels"
READY_WITHIN_S = 240.0
TEST_TOOLS = ("pytest", "playwright", "mypy", "ruff", "locust", "hypothesis")


def _copy_checkout(target: Path) -> None:
    """The checkout's files as git knows them (tracked and new, not ignored): no .venv, no
    node_modules."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.split(b"\0")
    for name in filter(None, listed):
        source = ROOT / os.fsdecode(name)
        if source.is_file():
            dest = target / os.fsdecode(name)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest)


def _failing_shims(folder: Path, calls: Path) -> None:
    folder.mkdir()
    for tool in ("node", "npm", "npx"):
        shim = folder / tool
        shim.write_text(f'#!/bin/sh\necho "{tool} $*" >> "{calls}"\nexit 1\n')
        shim.chmod(0o755)


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""


def test_the_first_command_installs_only_the_runtime_and_serves_the_page_without_node(
    tmp_path: Path,
) -> None:
    if not (WHEELS / "hatchling-1.33.0-py3-none-any.whl").is_file():
        pytest.fail(f"{WHEELS} is missing: run `bash scripts/bootstrap.sh` (test.sh does)")
    checkout, calls = tmp_path / "checkout", tmp_path / "node-calls"
    _copy_checkout(checkout)
    _failing_shims(tmp_path / "bin", calls)
    port = free_port()
    env = {
        **os.environ,
        "PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "PYTHON": getattr(sys, "_base_executable", sys.executable),
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": str(WHEELS),
    }
    env.pop("VIRTUAL_ENV", None)
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen(
        ["bash", "scripts/serve.sh", "--port", str(port), "--data-dir", str(tmp_path / "var")],
        cwd=checkout,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + READY_WITHIN_S
        while True:
            assert process.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            try:
                if _get(f"{base}/healthz")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()[-3000:]
            time.sleep(0.5)
        status, page = _get(f"{base}/")
        assert status == 200 and b"<html" in page.lower()
        assert _get(f"{base}/dev")[0] == 200  # serve.sh runs the dev landing page

        assert not calls.exists(), f"the first command ran Node.js: {calls.read_text()}"
        installed = subprocess.run(
            [str(checkout / ".venv" / "bin" / "python"), "-m", "pip", "list", "--format=freeze"],
            check=True,
            capture_output=True,
            text=True,
            env={**env, "PIP_NO_INDEX": "1"},
        ).stdout.lower()
        names = {line.split("==")[0] for line in installed.splitlines()}
        assert names.isdisjoint(TEST_TOOLS), f"test toolchain installed: {names & set(TEST_TOOLS)}"
        assert "aiortc" in names and "liveclass" in names, names
        assert not (checkout / "tests" / "yjs" / "node_modules").exists()
    finally:
        _stop(process)
        log.close()


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the command's process group (bash, then liveclass), SIGKILL after 20 s."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
