"""The media scenario on locust's side: start the aiortc bot processes (loadtest/media_swarm.py)
at the test's start, stop them at its stop, and put what they measured into locust's statistics
and the run's summary.

Locust runs gevent, where asyncio does not run, so the bots live in their own processes; each
writes JSON lines on its stdout (read here by a greenlet). In locust's statistics:

- ``join`` ``media bot``: a bot's join and publish/subscribe, until the SFU answered;
- ``media`` ``first frame``: per subscriber and publisher's video, from the ``media.offer``
  naming the producer to the first decoded frame; a failure when no frame came;
- ``media`` ``video`` / ``audio``: per subscriber and track, the mean interval between decoded
  frames (1000 / fps, in ms) with the bytes the subscriber's connection received as the length;
  a failure when no frame came.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from ipaddress import ip_address
from typing import Any
from urllib.parse import urlparse

import gevent

from loadtest.measures import Histogram

#: How long the bots get to report and close once asked to stop (s).
STOP_TIMEOUT_S = 20.0


def ice_addresses(option: str, ws_url: str) -> str:
    """The addresses bots gather ICE candidates on: the option, else 127.0.0.1 when the server is
    on loopback (no candidate leaves the machine), else '' (aiortc's default: every interface)."""
    if option:
        return option
    host = urlparse(ws_url).hostname or ""
    if host == "localhost":
        return "127.0.0.1"
    try:
        return "127.0.0.1" if ip_address(host).is_loopback else ""
    except ValueError:
        return ""


@dataclass
class MediaResults:
    """What the bots reported (merged over their processes)."""

    joins: int = 0
    join_failures: int = 0
    subscribers: list[dict[str, Any]] = field(default_factory=list)
    publishers: list[dict[str, Any]] = field(default_factory=list)
    processes_done: int = 0

    def summary(self, publishers_per_room: int) -> dict[str, Any]:
        first = Histogram()
        fps: list[float] = []
        missing = 0
        for sub in self.subscribers:
            missing += int(sub.get("missing", 0))
            for track in sub["tracks"]:
                if track["kind"] != "video":
                    continue
                if track["first_frame_ms"] is not None and track["frames"] > 0:
                    first.add(float(track["first_frame_ms"]))
                    fps.append(float(track["fps"]))
        fps.sort()
        return {
            "bots_joined": self.joins,
            "bot_join_failures": self.join_failures,
            "subscribers": len(self.subscribers),
            "publishers": len(self.publishers),
            "video_tracks_received": first.total,
            "video_tracks_missing": missing,
            "first_frame_ms": {f"p{q}": first.percentile(q / 100) for q in (50, 95, 100)},
            "video_fps": {
                "min": round(fps[0], 2) if fps else None,
                "p50": round(fps[len(fps) // 2], 2) if fps else None,
            },
            "bytes_received": sum(int(s.get("bytes_received", 0)) for s in self.subscribers),
            "bytes_sent": sum(int(p.get("bytes_sent", 0)) for p in self.publishers),
            "decode_errors": sum(int(s.get("decode_errors", 0)) for s in self.subscribers),
            "processes_reported": self.processes_done,
            "per_subscriber": self.subscribers,
        }


class MediaBots:
    """The bot processes of one run."""

    def __init__(self, environment: Any, ws_url: str, rooms: list[str]) -> None:
        self.environment = environment
        self.opts = environment.parsed_options
        self.ws_url = ws_url
        self.rooms = rooms
        self.procs: list[subprocess.Popen[str]] = []
        self.readers: list[gevent.Greenlet] = []
        self.results = MediaResults()

    def command(self, index: int, of: int, max_s: float) -> list[str]:
        o = self.opts
        cmd = [
            sys.executable,
            "-m",
            "loadtest.media_swarm",
            "--ws-url",
            self.ws_url,
            "--room",
            ",".join(self.rooms),
            "--publishers",
            str(o.media_publishers),
            "--subscribers",
            str(o.media_subscribers),
            "--width",
            str(o.media_width),
            "--height",
            str(o.media_height),
            "--fps",
            str(o.media_fps),
            "--ice-addresses",
            ice_addresses(o.media_ice_addresses, self.ws_url),
            "--max-s",
            str(max_s),
            "--stop-on-eof",
            "--index",
            str(index),
            "--of",
            str(of),
        ]
        if not o.media_audio:
            cmd.append("--no-audio")
        return cmd

    def start(self) -> None:
        o = self.opts
        run_time = float(getattr(o, "run_time", None) or 0)
        # Bounded even if nobody stops them: the run's time and a margin, or an hour.
        max_s = run_time + 60 if run_time > 0 else 3600.0
        of = max(1, o.media_processes)
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        for index in range(of):
            proc = subprocess.Popen(
                self.command(index, of, max_s),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                cwd=root,
                env={**os.environ, "PYTHONPATH": root},
            )
            self.procs.append(proc)
            self.readers.append(gevent.spawn(self._read, proc))

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                self._record(record)

    def _fire(self, kind: str, name: str, ms: float, length: int, error: str | None) -> None:
        self.environment.events.request.fire(
            request_type=kind,
            name=name,
            response_time=ms,
            response_length=length,
            exception=None if error is None else RuntimeError(error),
            context={},
        )

    def _record(self, record: dict[str, Any]) -> None:
        r = self.results
        kind = record.get("t")
        if kind == "join":
            if record.get("error") is None:
                r.joins += 1
                self._fire("join", "media bot", float(record["ms"]), 0, None)
            else:
                r.join_failures += 1
                self._fire("join", "media bot", 0.0, 0, f"{record['bot']}: {record['error']}")
        elif kind == "bot" and record.get("role") == "publisher":
            r.publishers.append(record)
        elif kind == "bot":
            r.subscribers.append(record)
            self._fire_subscriber(record)
        elif kind == "done":
            r.processes_done += 1

    def _fire_subscriber(self, sub: dict[str, Any]) -> None:
        who = sub["bot"]
        for track in sub["tracks"]:
            got = track["frames"] > 0
            error = None if got else f"{who}: no {track['kind']} frame from {track['identity']}"
            if track["kind"] == "video":
                first = float(track["first_frame_ms"]) if got else 0.0
                self._fire("media", "first frame", first, 0, error)
            interval = 1000.0 / track["fps"] if track["fps"] > 0 else 0.0
            self._fire("media", str(track["kind"]), interval, int(sub["bytes_received"]), error)
        empty = sum(1 for t in sub["tracks"] if t["kind"] == "video" and t["frames"] == 0)
        for _ in range(max(0, int(sub.get("missing", 0)) - empty)):
            # a publisher whose video this subscriber was never even offered
            self._fire("media", "first frame", 0.0, 0, f"{who}: a publisher's video not offered")

    def stop(self) -> None:
        """Ask every bot process to stop (SIGINT), wait for its report, kill it at the timeout."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for proc, reader in zip(self.procs, self.readers, strict=True):
            reader.join(timeout=max(0.1, deadline - time.monotonic()))
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            reader.kill()
            if proc.stdin is not None:
                proc.stdin.close()
        missing = len(self.procs) - self.results.processes_done
        if missing:
            self._fire("media", "report", 0.0, 0, f"{missing} bot process(es) did not report")
        self.procs.clear()
