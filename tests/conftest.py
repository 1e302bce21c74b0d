from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from tests.server import LiveclassServer

# Property tests draw the same examples on every run (CI is deterministic); a failure found while
# developing is replayed from its printed example.
settings.register_profile("deterministic", derandomize=True)
settings.load_profile("deterministic")

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Callable[..., LiveclassServer]]:
    """Start ``liveclass serve`` subprocesses with extra CLI args; all stopped at teardown."""
    started: list[LiveclassServer] = []

    def make(*args: str, data_dir: Path | None = None) -> LiveclassServer:
        server = LiveclassServer(data_dir or tmp_path / f"data{len(started)}", args)
        server.data_dir.mkdir(parents=True, exist_ok=True)
        started.append(server)
        return server.start()

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def server(make_server: Callable[..., LiveclassServer]) -> LiveclassServer:
    return make_server()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
