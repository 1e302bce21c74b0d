"""The locust suite (loadtest/locustfile.py) against a real ``liveclass serve``: a lecture of 200
users, the SLO gate both ways, reconnect churn whose every resume is checked, and the media
scenario (aiortc bots beside locust, their frames in the same report).

Each test runs locust headless as a subprocess for a bounded time (``subprocess.run`` kills it at
the timeout) and reads its CSV statistics and the summary JSON it writes.
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import re
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from clients import ClassroomClient
from tests.haproxy import HAProxy
from tests.redis_cluster import RedisCluster
from tests.server import LiveclassServer

ROOT = Path(__file__).resolve().parents[2]
LOCUSTFILE = ROOT / "loadtest" / "locustfile.py"


@dataclass
class Run:
    code: int
    output: str
    stats: dict[tuple[str, str], dict[str, str]]
    summary: dict[str, Any]

    def row(self, kind: str, name: str) -> dict[str, str]:
        assert (kind, name) in self.stats, (
            f"no {kind} {name} row: {sorted(self.stats)}\n{self.output}"
        )
        return self.stats[(kind, name)]

    def count(self, kind: str, name: str) -> int:
        return int(self.row(kind, name)["Request Count"]) if (kind, name) in self.stats else 0


def run_locust(
    server: LiveclassServer,
    tmp: Path,
    users: int,
    seconds: int,
    *args: str,
    host: str | None = None,
    locustfile: str = str(LOCUSTFILE),
) -> Run:
    prefix = tmp / "run"
    summary = tmp / "summary.json"
    cmd = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        locustfile,
        "--host",
        host or server.http_url,
        "--headless",
        "--only-summary",
        "-u",
        str(users),
        "-r",
        str(min(users, 100)),
        "-t",
        f"{seconds}s",
        "--csv",
        str(prefix),
        "--summary-json",
        str(summary),
        *args,
    ]
    env = {**os.environ, "LIVECLASS_SECRETS": f"test:{server.secret}"}
    proc = subprocess.run(
        cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=seconds + 30
    )
    output = proc.stdout + proc.stderr
    stats: dict[tuple[str, str], dict[str, str]] = {}
    stats_path = Path(f"{prefix}_stats.csv")
    if stats_path.exists():
        with stats_path.open() as f:
            for row in csv.DictReader(f):
                stats[(row["Type"], row["Name"])] = row
    loaded = json.loads(summary.read_text()) if summary.exists() else {}
    return Run(proc.returncode, output, stats, loaded)


def test_a_lecture_of_200_users_joins_all_and_delivers_every_line(
    server: LiveclassServer, tmp_path: Path
) -> None:
    # 16 s: the 200 join in about 2 s, then a line a second reaches every receiver; the ten
    # lines asserted to each of them leave a margin of a third.
    run = run_locust(server, tmp_path, 200, 16, "--rooms", "1", "--lurker-percent", "10")
    assert run.code == 0, run.output
    total = run.row("", "Aggregated")
    assert total["Failure Count"] == "0", run.output
    welcome = run.row("join", "welcome")
    assert (welcome["Request Count"], welcome["Failure Count"]) == ("200", "0"), run.output
    fanout = run.row("fanout", "chat.message")
    assert int(fanout["Request Count"]) > 199 * 10  # at least ten lines to each receiver
    assert float(fanout["50%"]) > 0 and float(fanout["95%"]) >= float(fanout["50%"])
    delivery = run.summary["delivery"]
    assert delivery["ratio"] == 1.0 and delivery["expected"] >= 199 * 10, delivery
    assert run.summary["joins"] == 200 and run.summary["join_failures"] == 0
    # the receivers' histogram keeps what locust's rounding drops
    assert run.summary["fanout_ms"]["count"] == int(fanout["Request Count"])
    assert run.count("ack", "chat.send") >= 10
    assert "delivery" in run.output and "fan-out (ms)" in run.output


def test_the_slo_gate_fails_an_impossible_target(server: LiveclassServer, tmp_path: Path) -> None:
    run = run_locust(
        server, tmp_path, 6, 4, "--lecture-every-s", "0.3", "--slo-fanout-p95-ms", "0.001"
    )
    assert run.code == 3, run.output
    assert "FAIL  fan-out p95" in run.output, run.output
    assert run.row("", "Aggregated")["Failure Count"] == "0"


def test_the_slo_gate_passes_generous_targets(server: LiveclassServer, tmp_path: Path) -> None:
    run = run_locust(
        server,
        tmp_path,
        6,
        4,
        "--lecture-every-s",
        "0.3",
        "--slo-fanout-p95-ms",
        "60000",
        "--slo-ack-p99-ms",
        "60000",
        "--slo-join-failures",
        "0",
        "--slo-delivery-ratio",
        "1",
    )
    assert run.code == 0, run.output
    assert run.output.count("PASS  ") == 4, run.output
    assert [v["ok"] for v in run.summary["slo"]] == [True] * 4


def test_reconnect_churn_resumes_miss_nothing_and_repeat_nothing(
    server: LiveclassServer, tmp_path: Path
) -> None:
    run = run_locust(
        server,
        tmp_path,
        30,
        # 9 s: a drop every 2 s on average makes about four resumes a student, the two
        # asserted with room to spare
        9,
        "--lurker-percent",
        "0",
        "--lecture-every-s",
        "0.3",
        "--churn-every-s",
        "2",
        "--chat-per-min",
        "20",
        "--upvote-per-min",
        "20",
        "--ask-per-min",
        "6",
    )
    assert run.code == 0, run.output
    assert run.row("", "Aggregated")["Failure Count"] == "0", run.output
    resumes = run.row("resume", "replay")
    assert int(resumes["Request Count"]) >= 29 * 2, run.output  # every student resumed, twice
    assert run.count("join", "resumed") == int(resumes["Request Count"])
    assert run.count("fanout", "chat.message:replayed") > 0  # lines sent while away came back
    assert run.summary["delivery"]["ratio"] == 1.0, run.summary["delivery"]


def test_class_start_brings_three_classes_in_within_their_window(
    server: LiveclassServer, tmp_path: Path
) -> None:
    shape = f"{LOCUSTFILE},{ROOT / 'loadtest' / 'class_start.py'}"
    run = run_locust(
        server,
        tmp_path,
        1,  # replaced by the shape
        30,
        "--class-size",
        "60",
        "--class-start-s",
        "3",
        "--class-hold-s",
        "3",
        "--rooms",
        "3",
        locustfile=shape,
    )
    assert run.code == 0, run.output
    assert run.row("", "Aggregated")["Failure Count"] == "0", run.output
    assert run.row("join", "welcome")["Request Count"] == "63"  # 60 students, 3 teachers
    delivery = run.summary["delivery"]
    assert delivery["ratio"] == 1.0, delivery
    rooms = {line.split(",")[0] for line in (tmp_path / "run_delivery.csv").read_text().split()[1:]}
    assert rooms == {"lt-0", "lt-1", "lt-2"}  # every room lectured


def test_a_distributed_run_gathers_every_workers_measures_on_the_master(
    server: LiveclassServer, tmp_path: Path
) -> None:
    run = run_locust(server, tmp_path, 40, 8, "--processes", "2", "--rooms", "2")
    assert run.code == 0, run.output
    assert run.row("", "Aggregated")["Failure Count"] == "0", run.output
    assert run.summary["joins"] == 40
    delivery = run.summary["delivery"]
    assert delivery["ratio"] == 1.0 and delivery["expected"] > 0, delivery
    fanout = int(run.row("fanout", "chat.message")["Request Count"])
    assert run.summary["fanout_ms"]["count"] == fanout
    rooms = {line.split(",")[0] for line in (tmp_path / "run_delivery.csv").read_text().split()[1:]}
    assert rooms == {"lt-0", "lt-1"}  # one teacher per room, one on each worker


def test_whiteboard_scribble_converges_on_every_board(
    server: LiveclassServer, tmp_path: Path
) -> None:
    run = run_locust(
        server, tmp_path, 30, 8, "--board-strokes-per-min", "60", "--lurker-percent", "0"
    )
    assert run.code == 0, run.output
    assert run.row("", "Aggregated")["Failure Count"] == "0", run.output
    assert run.row("join", "board")["Request Count"] == "29"  # every student opened the board
    assert int(run.row("board", "stroke")["Request Count"]) > 29 * 28  # strokes reached others
    converge = run.row("board", "converge")
    assert (converge["Request Count"], converge["Failure Count"]) == ("1", "0")
    ((room, equal, what),) = run.summary["boards"]
    assert room == "lt-0" and equal, what
    # board connections are counted apart from the /ws joins
    assert run.summary["joins"] == 30, run.summary
    assert run.summary["connections"]["board"] == [29, 0], run.summary
    assert "board connections 29 ok, 0 failed" in run.output


def test_students_answer_a_poll_that_was_open_before_they_joined(
    server: LiveclassServer, tmp_path: Path
) -> None:
    async def open_poll() -> int:
        token = server.token("early-teacher", "teacher", room="lt-0")
        async with ClassroomClient(server.ws_url, token, "lt-0", reconnect=False) as teacher:
            ack = await teacher.open_poll("Ready?", ["yes", "no"])
            return int(ack["ids"][0])

    asyncio.run(open_poll())
    run = run_locust(
        server, tmp_path, 6, 6, "--poll-every-s", "0", "--lurker-percent", "0", "--rooms", "1"
    )
    assert run.code == 0, run.output
    assert run.row("", "Aggregated")["Failure Count"] == "0", run.output
    assert run.count("ack", "poll.open") == 0  # the swarm's teacher opened none
    assert run.count("ack", "poll.answer") == 5, run.output  # every student answered it


def test_breakout_churn_keeps_every_line_in_its_room_and_delivers_every_lecture_line(
    server: LiveclassServer, tmp_path: Path
) -> None:
    # Rounds of 3 breakout rooms open every few seconds (odd ones closed by their timer, even
    # ones by the teacher), each with two moves and a broadcast, while students chat, drop and
    # resume. A line of another room reaching a student is a failure (breakout / isolation).
    # Rounds of 3 s follow one another from about 1 s in: the three rounds asserted (a timed
    # one, one the teacher closes, the third opened) are done by about 8 s of the 15.
    run = run_locust(
        server,
        tmp_path,
        25,
        15,
        "--lecture-every-s",
        "0.5",
        "--chat-per-min",
        "30",
        "--breakout-every-s",
        "2",
        "--breakout-rooms",
        "3",
        "--breakout-duration-s",
        "3",
        "--churn-every-s",
        "5",
    )
    assert run.code == 0, run.output
    assert run.row("", "Aggregated")["Failure Count"] == "0", run.output
    assert run.count("breakout", "isolation") == 0, run.output
    assert run.count("ack", "breakout.open") >= 3, run.output
    assert run.count("ack", "breakout.close") >= 1  # an untimed round, closed by the teacher
    timer = run.row("breakout", "timer close")  # a timed round, closed by the server
    assert int(timer["Request Count"]) >= 1 and float(timer["Max Response Time"]) < 2000
    assert run.count("ack", "breakout.move") >= 2 and run.count("ack", "breakout.assign") >= 2
    assert run.count("ack", "breakout.timer") >= 1
    assert run.count("breakout", "chat.message") > 0  # students' lines inside their rooms
    assert run.count("fanout", "breakout.broadcast") >= 24 * 2  # every receiver, each round
    assert run.count("fanout", "chat.message") > 0  # the lecture went on in the main room
    assert run.count("resume", "replay") > 0  # churn resumed some students
    delivery = run.summary["delivery"]
    assert delivery["ratio"] == 1.0 and delivery["expected"] > 0, delivery


def _joins(node: LiveclassServer) -> float:
    status, body, _ = node.get("/metrics")
    assert status == 200
    found = re.search(rb"^liveclass_joins_total ([0-9.e+]+)$", body, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


@dataclass
class Tier:
    """Two ``liveclass serve`` nodes on the module's Redis Cluster behind HAProxy."""

    nodes: list[LiveclassServer]
    balancer: HAProxy

    def joins(self) -> list[float]:
        """Each node's ``liveclass_joins_total`` now."""
        return [_joins(node) for node in self.nodes]


@pytest.fixture(scope="module")
def tier(cluster: RedisCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tier]:
    """One tier for the module's runs across nodes (starting a cluster, two nodes and HAProxy
    takes about 7 s). A run depends on no other's leftovers: each has rooms of its own
    (``--room-prefix``) and counts the joins it made from the nodes' counters before and after.

    The nodes do not rebalance: fresh nodes would not within their 30 s quiet period, and these
    nodes outlive it, so a later run would have clients asked to move (test_rebalance.py's
    subject, not these runs')."""
    directory = Path(tmp_path_factory.mktemp("tier"))
    secret = secrets.token_urlsafe(32)
    nodes: list[LiveclassServer] = []
    balancer: HAProxy | None = None
    try:
        for i in (1, 2):
            node = LiveclassServer(
                directory / f"node{i}",
                [
                    *("--redis-cluster", cluster.seeds, "--node-id", f"node{i}"),
                    *("--no-media", "--no-rebalance"),
                ],
                secret=secret,
            )
            node.data_dir.mkdir()
            nodes.append(node.start())
        balancer = HAProxy(directory / "haproxy", [("127.0.0.1", n.port) for n in nodes]).start()
        yield Tier(nodes, balancer)
    finally:
        if balancer is not None:
            balancer.stop()
        for node in nodes:
            node.stop()


def test_a_lecture_spread_over_two_nodes_behind_haproxy_on_the_redis_cluster(
    tier: Tier, tmp_path: Path
) -> None:
    before = tier.joins()
    # 10 s: the 100 join in about 1 s, then a line a second reaches every receiver; the five
    # lines asserted to each of them leave a margin of a third.
    run = run_locust(
        tier.nodes[0],
        tmp_path,
        100,
        10,
        "--source-addresses",
        "loopback",
        "--room-prefix",
        "spread",
        host=tier.balancer.url,
    )
    assert run.code == 0, run.output
    assert run.row("", "Aggregated")["Failure Count"] == "0", run.output
    assert run.row("join", "welcome")["Request Count"] == "100"
    assert run.summary["delivery"]["ratio"] == 1.0, run.summary["delivery"]
    assert run.count("fanout", "chat.message") > 99 * 5
    joins = [after - was for was, after in zip(before, tier.joins(), strict=True)]
    assert all(j >= 10 for j in joins), joins  # both nodes served users
    assert sum(joins) == 100


def test_each_student_draws_on_its_breakout_rooms_board_and_every_board_converges(
    server: LiveclassServer, tmp_path: Path
) -> None:
    run = run_locust(
        server,
        tmp_path,
        20,
        # 12 s: the first round (4 s) closes at about 5 s and the second opens then, which is all
        # the assertions need; the rest is margin
        12,
        "--lurker-percent",
        "0",
        "--board-strokes-per-min",
        "60",
        "--breakout-every-s",
        "2",
        "--breakout-rooms",
        "2",
        "--breakout-duration-s",
        "4",
    )
    assert run.code == 0, run.output
    assert run.row("", "Aggregated")["Failure Count"] == "0", run.output
    # the 19 students' 'main' boards, and a breakout room's board for each student each round
    assert int(run.row("join", "board")["Request Count"]) > 19 * 2, run.output
    assert run.count("board", "closed 4404:expected") > 0  # left behind when a round closed
    converge = run.row("board", "converge")
    assert int(converge["Request Count"]) >= 3 and converge["Failure Count"] == "0"
    boards = {room for room, _, _ in run.summary["boards"]}
    assert "lt-0" in boards and any(b.startswith("lt-0/br") for b in boards), boards
    assert int(run.row("board", "stroke")["Request Count"]) > 0


def test_breakout_churn_across_two_nodes_behind_haproxy_on_the_redis_cluster(
    tier: Tier, tmp_path: Path
) -> None:
    # Members of one breakout room on different nodes: each node's hub fans a room's lines out
    # to its own members of that room only, and either node's timer closes a timed round.
    # 12 s: the first round (timed, 4 s) closes at about 5 s and the second opens then, which is
    # all the assertions need; the rest is margin.
    before = tier.joins()
    run = run_locust(
        tier.nodes[0],
        tmp_path,
        40,
        12,
        "--source-addresses",
        "loopback",
        "--room-prefix",
        "churn",
        "--lecture-every-s",
        "0.5",
        "--chat-per-min",
        "20",
        "--breakout-every-s",
        "2",
        "--breakout-rooms",
        "4",
        "--breakout-duration-s",
        "4",
        host=tier.balancer.url,
    )
    assert run.code == 0, run.output
    assert run.row("", "Aggregated")["Failure Count"] == "0", run.output
    assert run.count("breakout", "isolation") == 0, run.output
    assert run.count("ack", "breakout.open") >= 2, run.output
    assert run.count("breakout", "timer close") >= 1, run.output
    assert run.count("breakout", "chat.message") > 0
    assert run.count("fanout", "breakout.broadcast") >= 39
    assert run.summary["delivery"]["ratio"] == 1.0, run.summary["delivery"]
    joins = [after - was for was, after in zip(before, tier.joins(), strict=True)]
    assert all(j >= 5 for j in joins), joins  # both nodes served members of the rooms


def test_media_two_publishers_and_ten_subscribers_report_frames_in_the_same_run(
    make_server: Callable[..., LiveclassServer], tmp_path: Path
) -> None:
    # The SFU gathers ICE candidates on loopback only; the bots do too (a loopback --host).
    sfu = make_server("--sfu-listen-ips", "127.0.0.1", "--rate-per-s", "200")
    # 12 s: the bots' first frames come within the 5 s asserted, and every video track then
    # runs for several seconds at 15 fps, enough for its fps and its longest gap to mean what
    # they say.
    run = run_locust(
        sfu,
        tmp_path,
        5,
        12,
        "--media-publishers",
        "2",
        "--media-subscribers",
        "10",
        "--slo-media-first-frame-ms",
        "5000",
    )
    assert run.code == 0, run.output
    assert run.row("", "Aggregated")["Failure Count"] == "0", run.output
    assert run.row("join", "media bot")["Request Count"] == "12", run.output
    assert run.row("join", "welcome")["Request Count"] == "5"  # the locust users, same run
    first = run.row("media", "first frame")
    assert first["Request Count"] == "20", run.output  # each subscriber, each publisher's video
    assert 0 < float(first["Max Response Time"]) < 5000
    video = run.row("media", "video")
    assert video["Request Count"] == "20", run.output
    assert 0 < float(video["Max Response Time"]) < 1000  # a frame at least every second
    audio = run.row("media", "audio")
    assert audio["Request Count"] == "20", run.output  # each subscriber, each publisher's audio
    media = run.summary["media"]
    assert (media["subscribers"], media["publishers"]) == (10, 2), media
    assert (media["video_tracks_received"], media["video_tracks_missing"]) == (20, 0), media
    for sub in media["per_subscriber"]:
        videos = [t for t in sub["tracks"] if t["kind"] == "video"]
        assert len(videos) == 2 and all(t["frames"] > 0 and t["fps"] > 0 for t in videos), sub
        assert all(t["first_frame_ms"] is not None for t in videos), sub
        audios = [t for t in sub["tracks"] if t["kind"] == "audio"]
        assert len(audios) == 2 and all(t["frames"] > 0 for t in audios), sub
        assert sub["bytes_received"] > 0 and sub["decode_errors"] == 0, sub
    assert media["video_fps"]["min"] > 5, media  # 15 fps sent
    assert media["processes_reported"] == 1
    assert [v["name"] for v in run.summary["slo"] if v["ok"]] == ["media 1st frame"]
    assert "media first frame (ms)" in run.output
