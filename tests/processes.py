"""Starting and stopping the real processes tests run (liveclass, SFU workers, HAProxy, coturn):
wait until one is ready, stop it politely, kill it as a crash would."""

from __future__ import annotations

import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable


def wait_ready(
    proc: subprocess.Popen[bytes],
    ready: Callable[[], bool],
    timeout_s: float,
    what: str,
    log: Callable[[], str],
) -> None:
    """Poll ``ready()`` every 50 ms until it holds.

    Raises:
        RuntimeError: the process exited, or was not ready within ``timeout_s`` (it is stopped
            then); the message ends with ``log()``.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited {proc.returncode}: {log()}")
        if ready():
            return
        time.sleep(0.05)
    stop(proc)
    raise RuntimeError(f"{what} not ready in {timeout_s}s: {log()}")


def http_ok(url: str) -> Callable[[], bool]:
    """A readiness check: ``GET url`` answers 200."""

    def check() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    return check


def stop(proc: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM, then SIGKILL if it is still there after 10 s."""
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def kill(proc: subprocess.Popen[bytes] | None) -> None:
    """SIGKILL, as a crash would."""
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
