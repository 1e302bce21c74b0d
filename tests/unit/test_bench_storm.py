"""bench.storm's result aggregation and its clients' vote detector (no server, no benchmark run)."""

from __future__ import annotations

import json
import math
import shutil
import subprocess

import pytest

from bench.storm import PEER, ack_stats, cpu_stats, report, settle_stats

T0 = 10_000_000_000


def group(settle_ns: list[int], clients: int, frames: list[int]) -> dict[str, object]:
    return {
        "clients": clients,
        "done": len(settle_ns),
        "closed": 0,
        "over": 0,
        "settle_ns": settle_ns,
        "values": {"7": clients - len(settle_ns)} if clients > len(settle_ns) else {},
        "frames": frames,
    }


def test_ack_stats_merge_processes() -> None:
    acked = [
        {"sent": 3, "acks": 2, "ack_ms": [5.0, 1.0], "errors": {"timeout": 1}, "last_answer_ns": 7},
        {"sent": 2, "acks": 2, "ack_ms": [3.0, 100.0], "errors": {}, "last_answer_ns": 9},
    ]
    a = ack_stats(acked)
    assert (a["sent"], a["acks"], a["errors"]) == (5, 4, {"timeout": 1})
    assert a["ack_ms"] == {"p50": 3.0, "p99": 100.0, "max": 100.0}
    assert a["last_answer_ns"] == 9


def test_settle_is_the_last_client_and_frames_are_the_students() -> None:
    settled = [
        {
            "students": group([T0 + 400_000_000, T0 + 900_000_000], 2, [11, 13]),
            "staff": group([T0 + 1_200_000_000], 1, [500]),
            "close_codes": {},
        },
        {
            "students": group([T0 + 300_000_000], 1, [12]),
            "staff": group([], 0, []),
            "close_codes": {},
        },
    ]
    s = settle_stats(settled, T0, 3.0, last_send_s=0.999)
    assert s["settled"] and (s["done"], s["clients"]) == (4, 4)
    assert s["settle_s"] == pytest.approx(1.2)
    assert s["after_last_send_s"] == pytest.approx(0.201)
    assert s["frames_mean"] == 12 and s["frames_max"] == 13


def test_unsettled_run_reports_not_settled_with_its_wait() -> None:
    settled = [
        {"students": group([T0 + 1], 3, [1, 1, 1]), "staff": group([], 0, []), "close_codes": {}}
    ]
    s = settle_stats(settled, T0, 120.4)
    assert not s["settled"] and math.isnan(s["settle_s"])
    assert s["not_done_values"] == {"7": 2}
    cpu = cpu_stats(
        {
            "nodes_s": 2.0,
            "redis_s": 0.5,
            "clients_s": 1.8,
            "client_procs_s": [0.9, 0.9],
            "orchestrator_s": 0.0,
            "other_s": 0.0,
        },
        commands=1000,
        span_s=1.0,
        saturated_pct=80.0,
    )
    assert cpu["nodes_ms_per_cmd"] == 2.0 and cpu["harness_saturated"]
    run = {
        "label": "cluster2",
        "n": 3,
        "scenario": "upvote",
        "rep": 1,
        "joined": 3,
        "acks": ack_stats(
            [{"sent": 3, "acks": 3, "ack_ms": [1.0], "errors": {}, "last_answer_ns": 0}]
        ),
        "settle": s,
        "cpu": cpu,
    }
    table = report([run])
    assert "not settled in 120 s (1/3)" in table and "SATURATED" in table


@pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js")
def test_vote_detector_counts_events_and_tallies() -> None:
    frames = [
        {"t": "event", "id": 5, "type": "question.upvoted", "data": {"question_id": 1}},
        {"t": "event", "id": 6, "type": "question.upvoted", "data": {"question_id": 2}},
        {"t": "tally", "through": 40, "questions": [{"question_id": 1, "votes": 30}]},
        # an event the tally already counts (ids up to `through`) is not counted again
        {"t": "event", "id": 40, "type": "question.upvoted", "data": {"question_id": 1}},
        {"t": "event", "id": 41, "type": "question.upvoted", "data": {"question_id": 1}},
        {"t": "event", "id": 42, "type": "question.unvoted", "data": {"question_id": 1}},
        {"t": "event", "id": 43, "type": "chat.message", "data": {"text": "x"}},
        {"t": "tally", "through": 50, "questions": [{"question_id": 2, "votes": 9}]},
        {"t": "event", "id": 51, "type": "question.upvoted", "data": {"question_id": 1}},
    ]
    script = (
        "import { applyVote } from './settle.mjs';"
        "const v = { votes: 0, through: 0 };"
        f"const seen = {json.dumps(frames)}.map((f) => [applyVote(v, f, 1), v.votes]);"
        "console.log(JSON.stringify(seen));"
    )
    done = subprocess.run(
        ["node", "--input-type=module", "-e", script],
        cwd=PEER,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert json.loads(done.stdout) == [
        [True, 1],
        [False, 1],
        [True, 30],
        [False, 30],
        [True, 31],
        [True, 30],
        [False, 30],
        [False, 30],
        [True, 31],
    ]
