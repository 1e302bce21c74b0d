"""What an operator scrapes: every metric docs/operations.md documents, after a class.

One deployment for the module: 2 nodes and 1 SFU worker on a real Redis Cluster, with TURN
credentials handed out. A class runs across both nodes (chat, hands, questions, a poll, a refused
command and a refused join, a whiteboard, a breakout move, video through the worker, a dropped
connection that resumes, an RPC handshake without a token), then everyone leaves. The scrapes
before and after show every documented metric, every counter the class drives moving, the labels
holding no identity or room, and the rooms and boards unloaded again.

The dashboard and the alert rules are checked against the same live scrape: each metric they
name is one the server exports.

Counters only a failure moves are asserted where a test causes it (:data:`MOVED_ELSEWHERE`).
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from clients import ClassroomClient
from clients.sdk import CommandFailed, Refused
from rooms import Role
from sfu import rpc
from signaling.auth import Grants, mint
from tests.integration.media_peers import (
    flowing,
    loopback_ice,
    peers_fixture,
    publishing,
    until,
    watching,
)
from tests.integration.yboard import YClient, board_url
from tests.metrics_scrape import scrape, value
from tests.prometheus_rules import SCRAPE_SERIES, dashboard_exprs, referenced_metrics, rule_exprs
from tests.redis_cluster import RedisCluster
from tests.server import LiveclassServer
from tests.sfu_worker import SfuWorker

__all__ = ["loopback_ice", "peers_fixture"]

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("loopback_ice")]

ROOT = Path(__file__).resolve().parents[2]
OPERATIONS = ROOT / "docs" / "operations.md"
#: The only label names a liveclass metric may carry (``le``: a histogram's bucket bound).
LABELS = {"code", "outcome", "type", "layer", "le"}
#: Counters the class moves only once everyone left (a board is compacted as it unloads).
AT_UNLOAD = {"liveclass_board_compactions_total"}
#: Counters a normal class does not move, and the test that makes each move.
MOVED_ELSEWHERE = {
    "liveclass_slow_consumers_total": "test_flow_control.py",
    "liveclass_append_conflicts_total": "test_contended_room.py",
    "liveclass_redis_errors_total": "test_health.py",
    "liveclass_redis_failovers_total": "test_health.py",
    "liveclass_redis_reconnects_total": "test_health.py",
    "liveclass_gap_fills_total": "test_health.py",
    "liveclass_rebalance_asks_total": "test_rebalance.py",
    "liveclass_sfu_workers_lost_total": "test_sfu_placement.py",
    "liveclass_media_resets_total": "test_sfu_placement.py",
    "liveclass_board_closes_total": "test_whiteboard_bad_input.py",
    "liveclass_sfu_consumer_skips_total": "tests/unit/test_sfu_router.py",
    "liveclass_sfu_layer_changes_total": "tests/unit/test_sfu_router.py",
    "liveclass_sfu_encode_refusals_total": "never (a forwarding SFU never encodes)",
}


def documented() -> dict[str, tuple[str, str]]:
    """docs/operations.md's Metrics table: name -> (type, where it is scraped)."""
    text = OPERATIONS.read_text()
    section = text[text.index("\n## Metrics\n") :]
    section = section[: section.index("\n## ", 1)]
    rows = re.findall(r"^\| `([a-z_]+)` \| (\w+) \| ([^|]+) \|", section, re.MULTILINE)
    assert len(rows) > 40, "the Metrics table was not found"
    return {name: (kind, where.strip()) for name, kind, where in rows}


def token(node: LiveclassServer, identity: str, room: str, role: str = "student") -> str:
    grants = Grants(room, Role(role), can_publish=True, can_subscribe=True)
    return mint(node.keyring, identity=identity, name=identity, grants=grants, ttl_s=600)


@pytest.fixture(scope="module")
def deployment(
    cluster: RedisCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[list[LiveclassServer], SfuWorker]]:
    directory = Path(tmp_path_factory.mktemp("metrics"))
    secret = secrets.token_urlsafe(32)
    worker = SfuWorker(directory / "worker", cluster.seeds, "w1", secret=secret)
    nodes: list[LiveclassServer] = []
    try:
        worker.start()
        for i in (1, 2):
            node = LiveclassServer(
                directory / f"node{i}",
                [
                    "--redis-cluster",
                    cluster.seeds,
                    "--node-id",
                    f"node{i}",
                    "--room-idle-s",
                    "1",
                    "--board-idle-s",
                    "1",
                    "--room-snapshot-every",
                    "10",
                    "--turn-servers",
                    "turn:127.0.0.1:3478",
                ],
                secret=secret,
                env={"LIVECLASS_TURN_SECRET": secrets.token_urlsafe(16)},
            )
            node.data_dir.mkdir(parents=True)
            nodes.append(node)
            node.start()
        yield nodes, worker
    finally:
        for process in [*nodes, worker]:
            process.stop()


async def test_a_class_moves_every_documented_metric_and_labels_name_no_one(
    deployment: tuple[list[LiveclassServer], SfuWorker], peers: list[Any]
) -> None:
    (n1, n2), worker = deployment
    room = f"metrics-{secrets.token_hex(3)}"
    before = [scrape(n1.http_url), scrape(n2.http_url), scrape(worker.http_url)]

    # Every documented metric is exported where the table says, before anything happened, and
    # nothing liveclass exports is left out of the table.
    table = documented()
    for name, (kind, where) in table.items():
        sources = []
        if "node" in where:
            sources += [before[0], before[1]]
        if "worker" in where:
            sources.append(before[2])
        assert sources, f"{name}: no source in the table"
        for families in sources:
            assert name in families, f"{name} ({where}) is not exported"
            assert families[name].type == kind, f"{name} is a {families[name].type}, not {kind}"
    for families in before:
        # (``<counter or histogram>_created``: prometheus_client's creation time of each.)
        exported = {n for n in families if n.startswith("liveclass_")}
        undocumented = {n for n in exported if not n.endswith("_created")} - set(table)
        assert not undocumented, f"exported but not in docs/operations.md, Metrics: {undocumented}"

    teacher = ClassroomClient(n1.ws_url, token(n1, "teacher", room, "teacher"), room)
    student = ClassroomClient(n2.ws_url, token(n2, "s-one", room), room)
    other = ClassroomClient(n1.ws_url, token(n1, "s-two", room), room)
    peers.extend([teacher, student, other])
    welcome = await teacher.connect()
    assert welcome["ice_servers"], "TURN credentials in the welcome"
    await student.connect()
    await other.connect()

    await teacher.chat("good morning")
    await student.raise_hand()
    await student.ask("what is a metric?")
    await teacher.open_poll("ready?", ["yes", "no"])
    await student.answer_poll(1, [0])  # the room's first poll
    with pytest.raises(CommandFailed):
        await student.lock_room()  # a student may not: command_errors{not_allowed}
    refused = ClassroomClient(n2.ws_url, "not-a-token", room)
    with pytest.raises(Refused):
        await refused.connect()

    # The whiteboard: one update committed, compacted when the board unloads.
    board = await YClient.open(board_url(n1, token(n1, "teacher", room, "teacher"), room))
    await board.sync()
    await board.draw("line-1", x=1, y=2)
    await asyncio.sleep(0.3)
    await board.close()

    # Breakout rooms: a move sends views.
    await teacher.open_breakouts(["Red"], members={"s-two": "Red"}, duration_s=600)
    await teacher.move_to_breakout("s-two", None)

    # Video through the worker.
    publisher = await publishing(teacher, peers)
    watcher = await watching(student, peers)
    await flowing(watcher, ("teacher", "camera"))
    assert publisher is not None

    # A dropped connection resumes with the events it missed.
    await other.drop()  # the client reconnects by itself
    await teacher.chat("you missed this")
    await until(lambda: other.session.resumes == 1, 10, "the dropped client resumed")

    # An RPC handshake without a token is refused by the worker.
    with pytest.raises(InvalidStatus) as refusal:
        async with connect(f"ws://127.0.0.1:{worker.port}{rpc.PATH}w1"):
            pass
    assert refusal.value.response.status_code == 401

    during = [scrape(n1.http_url), scrape(n2.http_url), scrape(worker.http_url)]
    for i, families in enumerate(during):
        for family in families.values():
            for sample in family.samples:
                extra = set(sample.labels) - LABELS
                assert not extra, f"{sample.name} has labels {extra}"
                for label in sample.labels.values():
                    assert room not in label and not label.startswith(("s-", "teacher")), (
                        f"{sample.name}{sample.labels} on scrape {i}"
                    )
        assert value(families, "liveclass_ready") == 1
    for families in during[:2]:
        assert value(families, "liveclass_redis_cluster_covered") == 1
        assert value(families, "liveclass_redis_masters_without_replica") == 0

    def moved(name: str, index: int | None = None, **labels: str) -> bool:
        """Whether ``name`` grew on the nodes (or on the one at ``index``)."""
        which = range(2) if index is None else [index]
        return (
            sum(value(during[i], name, **labels) - value(before[i], name, **labels) for i in which)
            > 0
        )

    for name in (
        "liveclass_joins_total",
        "liveclass_frames_received_total",
        "liveclass_frames_sent_total",
        "liveclass_events_appended_total",
        "liveclass_append_seconds",
        "liveclass_batch_commands",
        "liveclass_delivery_seconds",
        "liveclass_room_snapshots_saved_total",
        "liveclass_views_total",
        "liveclass_turn_credentials_total",
        "liveclass_board_updates_total",
        "liveclass_sfu_placements_total",
    ):
        assert moved(name), f"{name} did not move"
    assert moved("liveclass_join_rejections_total", code="token_invalid")
    assert moved("liveclass_command_errors_total", code="not_allowed")
    assert moved("liveclass_resumes_total", outcome="exact")
    for command in ("chat.send", "hand.raise", "poll.answer", "media.publish", "media.subscribe"):
        assert moved("liveclass_command_seconds", type=command), command
    # Each node delivers what the other committed: both observed deliveries.
    assert moved("liveclass_delivery_seconds", 0) and moved("liveclass_delivery_seconds", 1)

    w_before, w_during = before[2], during[2]
    for name in (
        "liveclass_sfu_frames_received_total",
        "liveclass_sfu_packets_forwarded_total",
        "liveclass_sfu_bytes_forwarded_total",
        "liveclass_sfu_keyframe_requests_total",
        "liveclass_sfu_rpc_refusals_total",
        "process_cpu_seconds_total",
    ):
        assert value(w_during, name) > value(w_before, name), f"{name} did not move"
    assert value(w_during, "liveclass_sfu_producers") >= 1
    assert value(w_during, "liveclass_sfu_consumers") >= 1
    assert value(w_during, "liveclass_sfu_bytes_forwarded_total") > value(
        w_during, "liveclass_sfu_packets_forwarded_total"
    )
    assert sum(value(f, "liveclass_rooms") for f in during[:2]) == 2
    assert sum(value(f, "liveclass_connections") for f in during[:2]) == 3

    # Every counter of the table moved here, or is asserted where a failure moves it.
    for name, (kind, _) in table.items():
        if kind != "counter" or name in MOVED_ELSEWHERE or name in AT_UNLOAD:
            continue
        after = sum(value(f, name) for f in during if name in f)
        earlier = sum(value(f, name) for f in before if name in f)
        assert after > earlier, f"{name} did not move in the class"

    # Everyone leaves: the rooms and the boards unload (room and board idle: 1 s), the board
    # is compacted on its way out, and nothing is queued.
    for peer in reversed(peers):
        await peer.close()
    peers.clear()

    def unloaded() -> bool:
        now = [scrape(n1.http_url), scrape(n2.http_url)]
        return all(
            value(f, "liveclass_rooms") == 0
            and value(f, "liveclass_boards") == 0
            and value(f, "liveclass_connections") == 0
            and value(f, "liveclass_board_connections") == 0
            for f in now
        )

    await until(unloaded, 15, "rooms and boards unloaded on both nodes")
    after = [scrape(n1.http_url), scrape(n2.http_url)]
    assert sum(value(f, "liveclass_board_compactions_total") for f in after) > sum(
        value(f, "liveclass_board_compactions_total") for f in before[:2]
    )
    assert all(value(f, "liveclass_send_queue_bytes") == 0 for f in after)
    assert all(value(f, "liveclass_board_bytes") == 0 for f in after)


def test_the_dashboard_and_the_alert_rules_name_only_exported_metrics(
    deployment: tuple[list[LiveclassServer], SfuWorker],
) -> None:
    (n1, _), worker = deployment
    # ``up`` is Prometheus's own series for each target, never on /metrics.
    exported = set(scrape(n1.http_url)) | set(scrape(worker.http_url)) | SCRAPE_SERIES
    exported |= {name.removesuffix("_total") for name in exported}  # as PromQL may name them
    dashboard = referenced_metrics(
        "\n".join(dashboard_exprs(ROOT / "deploy/grafana/liveclass.json"))
    )
    rules = referenced_metrics("\n".join(rule_exprs(ROOT / "deploy/prometheus/alerts.yml")))
    assert dashboard and rules
    assert dashboard - exported == set()
    assert rules - exported == set()
