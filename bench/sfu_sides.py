"""The SFUs ``bench.sfu`` compares, started the same way: a fresh process per run, and the media
peer processes (``bench.sfu_media``) that publish to and subscribe from it.

- ``liveclass``: ``liveclass serve`` (embedded: SQLite, in-process bus) with
  ``--sfu-listen-ips 127.0.0.1``, a temporary ``--data-dir`` and a free port
  (:func:`bench.common.start_server`); peers join room ``class`` over ``/ws`` with tokens minted
  with the server's secret (``signaling.mint``, as ``liveclass token`` does).
- ``mediarelay``: ``bench/peers/mediarelay/relay.py`` (aiortc ``MediaRelay``: decode + N encodes).
- ``janus``: Janus 1.1.2 VideoRoom in a network namespace (:mod:`bench.sfu_janus`); its peers run
  inside the namespace.

The measured process is :attr:`SideUnderTest.ps`: the liveclass server, the relay, or janus itself.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psutil

from bench.common import BENCH, HOST, REPO, Child, Server, free_port, log_dir, start_server
from bench.sfu_janus import ICE_IP as JANUS_ICE_IP
from bench.sfu_janus import ROOM as JANUS_ROOM
from bench.sfu_janus import Janus, start_janus

SIDES = ("liveclass", "mediarelay", "janus")
RELAY = BENCH / "peers" / "mediarelay" / "relay.py"
ROOM = "class"
LIVECLASS_ARGS = ("--sfu-listen-ips", HOST)


@dataclass
class SideUnderTest:
    """A started SFU: what to measure, how its peers reach it, how to stop it."""

    name: str
    ps: psutil.Process
    #: Signaling settings for ``bench.sfu_media`` (``side`` and its addresses).
    peer_cfg: dict[str, Any]
    #: The address the peers gather ICE candidates on.
    ice_ip: str
    #: Prefix of a peer's command (``ip netns exec <ns>`` for Janus).
    exec_prefix: list[str]
    stop: Callable[[], Any]
    #: liveclass: mints a token for (identity, role).
    token: Callable[[str, str], str] | None = None
    #: liveclass: its ``liveclass_sfu_*`` metrics (a blocking HTTP GET of /metrics).
    metrics: Callable[[], dict[str, float]] | None = None
    log: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def cpu_s(self) -> float:
        t = self.ps.cpu_times()
        return float(t.user + t.system)

    def cpu_split_s(self) -> tuple[float, float]:
        """(user, system) CPU seconds of the SFU process so far."""
        t = self.ps.cpu_times()
        return float(t.user), float(t.system)

    def threads(self) -> int:
        return int(self.ps.num_threads())

    def rss_mb(self) -> float:
        return round(self.ps.memory_info().rss / 2**20, 1)


async def start_side(name: str, tag: str) -> SideUnderTest:
    """Start SFU ``name`` (one of :data:`SIDES`) in a fresh process and wait until it serves."""
    if name == "liveclass":
        server: Server = await start_server("liveclass", LIVECLASS_ARGS, tag=tag)
        return SideUnderTest(
            name,
            server.ps,
            {"side": "liveclass", "url": f"ws://{HOST}:{server.port}/ws", "room": ROOM},
            HOST,
            [],
            server.stop,
            token=lambda identity, role: server.token(identity, role, ROOM),
            metrics=lambda: {
                k: v for k, v in server.metrics().items() if k.startswith("liveclass_sfu_")
            },
        )
    if name == "mediarelay":
        port = free_port()
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        log = log_dir() / f"{tag}-mediarelay-{port}.log"
        child = await Child.spawn(
            "mediarelay", [sys.executable, str(RELAY), str(port), HOST], env=env, log=log
        )
        try:
            line = await child.readline(20)
            if not line.startswith("ready"):
                raise RuntimeError(f"mediarelay said {line!r}; see {log}")
        except BaseException:
            await child.stop()
            raise
        return SideUnderTest(
            name,
            psutil.Process(child.pid),
            {"side": "mediarelay", "base": f"http://{HOST}:{port}"},
            HOST,
            [],
            child.stop,
            log=str(log),
        )
    if name == "janus":
        janus: Janus = await start_janus(tag)
        return SideUnderTest(
            name,
            janus.ps,
            {"side": "janus", "base": janus.api, "room": JANUS_ROOM},
            JANUS_ICE_IP,
            janus.exec_prefix,
            janus.stop,
            log=str(janus.log),
        )
    raise ValueError(f"unknown side {name!r}; choose from {', '.join(SIDES)}")


async def spawn_peer(
    side: SideUnderTest, role: str, cfg: dict[str, Any], name: str, deadline_s: float
) -> Child:
    """Start one ``bench.sfu_media`` process for ``side`` (``role``: publish, subscribe, ttff)."""
    full = {
        **side.peer_cfg,
        **cfg,
        "role": role,
        "ice_ip": side.ice_ip,
        "deadline_s": deadline_s,
    }
    cmd = [*side.exec_prefix, sys.executable, "-m", "bench.sfu_media", json.dumps(full)]
    return await Child.spawn(name, cmd, log=log_dir() / f"{name}.log")


async def read_peer_event(child: Child, ev: str, timeout: float) -> dict[str, Any]:
    """The next ``ev`` event of a media peer.

    Raises:
        RuntimeError: the peer reported an error or exited first.
        TimeoutError: none within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        line = await child.readline(max(0.01, deadline - time.monotonic()))
        obj: dict[str, Any] = json.loads(line)
        if obj.get("ev") == "error":
            raise RuntimeError(f"{child.name}: {obj.get('error')}")
        if obj.get("ev") == ev:
            return obj
