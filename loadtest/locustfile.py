"""liveclass classes for locust: a teacher per room, students and lurkers, over the real protocol.

    LIVECLASS_SECRETS=k1:... locust -f loadtest/locustfile.py --host http://127.0.0.1:8080 \\
        --headless -u 200 -r 50 -t 30s --rooms 1 --csv out/run \\
        --slo-fanout-p95-ms 1500 --slo-ack-p99-ms 1000 --slo-join-failures 0 \\
        --slo-delivery-ratio 1

What each number means and every option: docs/loadtesting.md. In locust's statistics:

- ``join`` ``welcome`` / ``resumed``: from opening the connection to the server's answer.
- ``ack`` ``<command>``: from sending a command to its ``ack`` (an ``error`` is a failure, except
  the refusals a busy class causes by itself, reported as ``<command>:<code>``: a poll closed
  while a student answered it, a question answered while a student upvoted it).
- ``fanout`` ``chat.message``: from the teacher's send (a timestamp inside the lecture line) to
  each receiver's receipt, on this host's clock.
- ``resume`` ``replay``: from ``resumed`` to its last missed event; a failure when an event was
  missed (fewer than ``missed``, or a lecture line sent in the gap is absent) or repeated.
- ``event`` ``order``: a failure for each event id that came twice or went backwards.

Beside them, the swarm's own measures (loadtest/measures.py): the fan-out histogram to the
microsecond and the delivery of every lecture line (delivered / expected), gathered from workers
to the master and printed, with the SLO gate, when the run ends (``--summary-json``, and
``<csv prefix>_delivery.csv`` and ``_fanout.csv`` with ``--csv``).
"""

from __future__ import annotations

import itertools
import json
import os
import random
import time
import uuid
from pathlib import Path
from typing import Any

import gevent
from locust import User, constant, events, task
from locust import stats as locust_stats
from locust.env import Environment
from locust.exception import StopUser
from locust.runners import MasterRunner, WorkerRunner

from loadtest import slo
from loadtest.board import BoardClient, converged
from loadtest.breakouts import BROADCAST, Place, Round
from loadtest.measures import DeliveryLedger, Histogram
from loadtest.media import MediaBots
from loadtest.placement import teacher_room
from loadtest.tokens import TokenMinter
from loadtest.wire import Client, Frame, ProtocolFailure, source_address

#: Refusals a lively class causes by itself (races between participants), reported under their own
#: name and not as failures.
RACE_CODES = frozenset(
    {
        "poll_closed",
        "no_such_poll",
        "question_closed",
        "no_such_question",
        "already_voted",
        "no_raised_hands",
        "limit_reached",
    }
)
LECTURE = "lecture"
#: Close codes after which a client stays closed (docs/protocol.md, "Close codes").
STAY_CLOSED = frozenset({1000, 1002, 1007, 1009, 4401, 4403, 4409, 4410, 4423})
GATE_EXIT_CODE = 3

#: This process's measures (reset at each test start).
LEDGER = DeliveryLedger()
FANOUT = Histogram()
#: room -> this process's board connections (kept open past the users' stop for the converge
#: check).
BOARDS: dict[str, list[BoardClient]] = {}
#: room -> (boards equal, what) from the converge check at the test's stop.
CONVERGED: dict[str, tuple[bool, str]] = {}
#: Worker id -> its last report (on the master).
WORKER_REPORTS: dict[str, dict[str, Any]] = {}
#: The media scenario's bot processes (on the master or the single process).
MEDIA: MediaBots | None = None
RUN = uuid.uuid4().hex[:6]
_counter = itertools.count()
_teachers = itertools.count()
_minter: TokenMinter | None = None


# ---------------------------------------------------------------------- command line


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    g = parser.add_argument_group("liveclass")
    g.add_argument("--rooms", type=int, default=1, help="rooms; one teacher each")
    g.add_argument("--room-prefix", default="lt", help="room ids are <prefix>-<n>")
    g.add_argument("--lurker-percent", type=float, default=10.0, help="share of lurkers (%%)")
    g.add_argument("--lecture-every-s", type=float, default=1.0, help="teacher's lecture lines")
    g.add_argument("--poll-every-s", type=float, default=15.0, help="0: no polls")
    g.add_argument("--poll-open-s", type=float, default=8.0, help="a poll stays open this long")
    g.add_argument("--answer-every-s", type=float, default=3.0, help="teacher pins/answers")
    g.add_argument("--call-every-s", type=float, default=5.0, help="teacher calls on a hand")
    g.add_argument("--chat-per-min", type=float, default=1.0, help="per student")
    g.add_argument("--ask-per-min", type=float, default=0.2, help="per student")
    g.add_argument("--upvote-per-min", type=float, default=2.0, help="per student")
    g.add_argument("--hand-per-min", type=float, default=0.5, help="per student")
    g.add_argument(
        "--board-strokes-per-min",
        type=float,
        default=0.0,
        help="per student, on the class board 'main' (0: students open no board)",
    )
    g.add_argument(
        "--breakout-every-s",
        type=float,
        default=0.0,
        help="the teacher opens breakout rooms about this often (0: never)",
    )
    g.add_argument("--breakout-rooms", type=int, default=3, help="breakout rooms per round")
    g.add_argument(
        "--breakout-duration-s",
        type=float,
        default=10.0,
        help="a round's length: odd rounds close by their timer, even ones by the teacher",
    )
    g.add_argument(
        "--churn-every-s",
        type=float,
        default=0.0,
        help="students drop and resume about this often (0: never)",
    )
    g.add_argument(
        "--source-addresses",
        default="",
        help="'loopback': each user binds its own 127.a.b.c (HAProxy's balance source spreads "
        "them); or a comma list of addresses, taken round robin",
    )
    g.add_argument("--class-size", type=int, default=100, help="class_start.py: students")
    g.add_argument("--class-start-s", type=float, default=10.0, help="class_start.py: join window")
    g.add_argument("--class-hold-s", type=float, default=30.0, help="class_start.py: then")
    g.add_argument(
        "--swarm-workers",
        type=int,
        default=0,
        help="workers in a distributed run (0: --processes, else 1); numbers the teachers' rooms",
    )
    g.add_argument("--token-ttl-s", type=int, default=4 * 3600)
    g.add_argument("--summary-json", default="", help="write the run's summary here")
    g.add_argument("--slo-fanout-p95-ms", type=float, default=None)
    g.add_argument("--slo-ack-p99-ms", type=float, default=None)
    g.add_argument("--slo-join-failures", type=int, default=None)
    g.add_argument("--slo-delivery-ratio", type=float, default=None)
    g.add_argument(
        "--slo-media-first-frame-ms",
        type=float,
        default=None,
        help="the slowest subscriber's time to first video frame (every publisher's)",
    )
    m = parser.add_argument_group("liveclass media (aiortc bots beside the swarm)")
    m.add_argument("--media-publishers", type=int, default=0, help="per room (0: no media)")
    m.add_argument("--media-subscribers", type=int, default=0, help="per room")
    m.add_argument("--media-width", type=int, default=320)
    m.add_argument("--media-height", type=int, default=240)
    m.add_argument("--media-fps", type=float, default=15.0)
    m.add_argument(
        "--media-no-audio", dest="media_audio", action="store_false", help="no microphone"
    )
    m.add_argument("--media-processes", type=int, default=1, help="bot processes")
    m.add_argument(
        "--media-ice-addresses",
        default="",
        help="bots gather ICE candidates only here (default: 127.0.0.1 for a loopback host)",
    )


@events.init.add_listener
def _init(environment: Environment, **_: Any) -> None:
    opts = environment.parsed_options
    if opts is None:
        return
    TeacherUser.fixed_count = max(1, opts.rooms)
    share = min(max(opts.lurker_percent, 0.0), 100.0)
    LurkerUser.weight = round(share * 10)
    StudentUser.weight = round((100.0 - share) * 10)
    if isinstance(environment.runner, MasterRunner):
        environment.events.worker_report.add_listener(_on_worker_report)
    if isinstance(environment.runner, WorkerRunner):
        environment.events.report_to_master.add_listener(_on_report_to_master)


@events.test_start.add_listener
def _reset(environment: Environment, **_: Any) -> None:
    LEDGER.clear()
    FANOUT.counts.clear()
    WORKER_REPORTS.clear()
    CONVERGED.clear()
    _start_media(environment)


def _start_media(environment: Environment) -> None:
    """The media scenario: the bot processes start on the master (or the single process)."""
    global MEDIA
    opts = environment.parsed_options
    if opts is None or isinstance(environment.runner, WorkerRunner):
        return
    if opts.media_publishers <= 0 and opts.media_subscribers <= 0:
        return
    host = (environment.host or "http://127.0.0.1:8080").rstrip("/")
    ws_url = host.replace("https://", "wss://").replace("http://", "ws://") + "/ws"
    rooms = [f"{opts.room_prefix}-{i}" for i in range(max(1, opts.rooms))]
    MEDIA = MediaBots(environment, ws_url, rooms)
    MEDIA.start()


@events.test_stop.add_listener
def _stop_media(**_: Any) -> None:
    if MEDIA is not None:
        MEDIA.stop()


@events.quitting.add_listener
def _no_media_left(**_: Any) -> None:
    if MEDIA is not None and MEDIA.procs:
        MEDIA.stop()


@events.test_stop.add_listener
def _check_boards(environment: Environment, **_: Any) -> None:
    """Every board client of a room holds the same records once nothing more arrives."""
    for room, clients in sorted(BOARDS.items()):
        start = time.perf_counter()
        ok, what = converged(clients)
        CONVERGED[room] = (ok, what)
        environment.events.request.fire(
            request_type="board",
            name="converge",
            response_time=(time.perf_counter() - start) * 1000,
            response_length=len(clients),
            exception=None if ok else ProtocolFailure(f"room {room}: boards differ: {what}"),
            context={},
        )
        for client in clients:
            client.close()
    BOARDS.clear()


def _on_report_to_master(client_id: str, data: dict[str, Any]) -> None:
    data["liveclass"] = {
        "delivery": LEDGER.snapshot(),
        "fanout": FANOUT.snapshot(),
        "boards": {room: list(v) for room, v in CONVERGED.items()},
    }


def _on_worker_report(client_id: str, data: dict[str, Any]) -> None:
    if "liveclass" in data:
        WORKER_REPORTS[client_id] = data["liveclass"]


# ---------------------------------------------------------------------- end of run


def _ack_p99(environment: Environment) -> float | None:
    """The p99 of every command's ack, from locust's statistics (all ``ack`` rows together)."""
    from locust.stats import StatsEntry

    combined = StatsEntry(environment.stats, "ack", "ack")
    for entry in environment.stats.entries.values():
        if entry.method == "ack" and entry.name != "ping":
            combined.extend(entry)
    if combined.num_requests == 0:
        return None
    return float(combined.get_response_time_percentile(0.99))


#: ``join`` rows that are not ``/ws`` joins: their connections are counted apart.
OTHER_CONNECTIONS = ("board", "media bot")


def _connections(environment: Environment) -> dict[str, tuple[int, int]]:
    """(ok, failed) per kind of connection, from locust's ``join`` rows: ``ws`` (``/ws`` joins:
    ``welcome``, ``resumed``, ``refused``, ``timeout``), ``board`` and ``media bot``."""
    counts = {kind: [0, 0] for kind in ("ws", *OTHER_CONNECTIONS)}
    for e in environment.stats.entries.values():
        if e.method == "join":
            kind = e.name if e.name in OTHER_CONNECTIONS else "ws"
            counts[kind][0] += e.num_requests - e.num_failures
            counts[kind][1] += e.num_failures
    return {kind: (ok, failed) for kind, (ok, failed) in counts.items()}


def summarize(environment: Environment) -> dict[str, Any]:
    """The run's measures (this process's, or the master's from every worker's reports)."""
    if isinstance(environment.runner, MasterRunner):
        reports = list(WORKER_REPORTS.values())
    else:
        reports = [
            {
                "delivery": LEDGER.snapshot(),
                "fanout": FANOUT.snapshot(),
                "boards": {room: list(v) for room, v in CONVERGED.items()},
            }
        ]
    delivery = DeliveryLedger.merge(r["delivery"] for r in reports)
    fanout = Histogram.merge(r["fanout"] for r in reports)
    connections = _connections(environment)
    return {
        "fanout_ms": {
            "count": fanout.total,
            **{f"p{q}": fanout.percentile(q / 100) for q in (50, 90, 95, 99, 100)},
        },
        "ack_p99_ms": _ack_p99(environment),
        "joins": connections["ws"][0],
        "join_failures": sum(failed for _, failed in connections.values()),
        "connections": {kind: list(counts) for kind, counts in connections.items()},
        "delivery": {
            "lines": len(delivery.lines),
            "delivered": delivery.delivered,
            "expected": delivery.expected,
            "ratio": delivery.ratio,
            "incomplete": delivery.incomplete()[:100],
        },
        "boards": [[room, *v] for r in reports for room, v in r.get("boards", {}).items()],
        "failures": environment.stats.total.num_failures,
        "media": (
            None
            if MEDIA is None
            else MEDIA.results.summary(environment.parsed_options.media_publishers)
        ),
        "_fanout_histogram": fanout,
        "_delivery": delivery,
    }


@events.quitting.add_listener
def _gate(environment: Environment, **_: Any) -> None:
    """Print the run's measures and the SLO gate; a target missed sets the exit code."""
    if isinstance(environment.runner, WorkerRunner) or environment.parsed_options is None:
        return
    opts = environment.parsed_options
    if getattr(opts, "csv_prefix", None):
        # locust writes its CSV files every CSV_STATS_INTERVAL_SEC: let it write what the end of
        # the run reported (the board check of test_stop) before it closes them. The summary is
        # taken after, so that it and the CSV files hold the same samples.
        gevent.sleep(locust_stats.CSV_STATS_INTERVAL_SEC + 0.2)
    summary = summarize(environment)
    fanout: Histogram = summary.pop("_fanout_histogram")
    delivery = summary.pop("_delivery")
    targets = slo.Targets(
        opts.slo_fanout_p95_ms,
        opts.slo_ack_p99_ms,
        opts.slo_join_failures,
        opts.slo_delivery_ratio,
        opts.slo_media_first_frame_ms,
    )
    media = summary["media"]
    measured = slo.Measured(
        summary["fanout_ms"]["p95"],
        summary["ack_p99_ms"],
        summary["join_failures"],
        summary["delivery"]["ratio"],
        # the slowest first frame; none when any subscriber missed a publisher's video
        None
        if media is None or media["video_tracks_missing"] or not media["video_tracks_received"]
        else media["first_frame_ms"]["p100"],
    )
    verdicts = slo.evaluate(targets, measured)
    summary["slo"] = [v.__dict__ for v in verdicts]
    f = summary["fanout_ms"]
    d = summary["delivery"]
    connections = summary["connections"]
    lines = [
        "liveclass load test summary",
        "  joins {} ok, {} failed; board connections {} ok, {} failed; media bots {} ok, {} "
        "failed".format(*(n for kind in ("ws", *OTHER_CONNECTIONS) for n in connections[kind])),
        "  fan-out (ms) n={count} p50={p50} p95={p95} p99={p99} max={p100}".format(**f),
        f"  ack p99 {summary['ack_p99_ms']} ms",
        f"  delivery {d['delivered']}/{d['expected']} = {d['ratio']} over {d['lines']} lines",
    ]
    if media is not None:
        ff, fps = media["first_frame_ms"], media["video_fps"]
        lines += [
            f"  media {media['subscribers']} subscribers, {media['publishers']} publishers; "
            f"video tracks {media['video_tracks_received']} received, "
            f"{media['video_tracks_missing']} missing",
            f"  media first frame (ms) p50={ff['p50']} p95={ff['p95']} max={ff['p100']}; "
            f"video fps min={fps['min']} p50={fps['p50']}; "
            f"bytes received {media['bytes_received']}, decode errors {media['decode_errors']}",
        ]
    lines += [v.line() for v in verdicts]
    print("\n".join(lines), flush=True)
    if opts.summary_json:
        Path(opts.summary_json).write_text(json.dumps(summary, indent=2))
    if getattr(opts, "csv_prefix", None):
        with open(f"{opts.csv_prefix}_delivery.csv", "w") as out:
            out.write("room,event_id,delivered,expected\n")
            for (room, i), (got, want) in sorted(delivery.lines.items()):
                out.write(f"{room},{i},{got},{want}\n")
        with open(f"{opts.csv_prefix}_fanout.csv", "w") as out:
            out.write("latency_us,count\n")
            for bucket, count in sorted(fanout.counts.items()):
                out.write(f"{bucket},{count}\n")
    if any(not v.ok for v in verdicts):
        environment.process_exit_code = GATE_EXIT_CODE


# ---------------------------------------------------------------------- users


def _minter_for() -> TokenMinter:
    global _minter
    if _minter is None:
        _minter = TokenMinter.from_environment()
    return _minter


def swarm_workers(opts: Any) -> int:
    """How many worker processes share the rooms (1 in a single-process run)."""
    if getattr(opts, "swarm_workers", 0) > 0:
        return int(opts.swarm_workers)
    processes = getattr(opts, "processes", None)
    if processes == -1:
        return os.cpu_count() or 1
    return max(1, int(processes or 1))


class ClassUser(User):
    """What every participant does: mint a token, join its room, read every frame."""

    abstract = True
    role = "student"
    wait_time = constant(0.1)
    #: Whether resumes check the lecture lines replayed (receivers record them).
    checks_lines = False

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        self.opts = environment.parsed_options
        self.n = next(_counter)
        worker = getattr(environment.runner, "worker_index", 0)
        self.identity = f"{self.role[0]}-{RUN}-{max(worker, 0)}-{self.n}"
        self.room = self._room()
        self.token = _minter_for().token(
            self.room, self.identity, self.role, ttl_s=self.opts.token_ttl_s
        )
        self.client: Client | None = None
        #: Where this participant is (breakout room or main room), in the order of its frames.
        self.place = Place(self.identity, staff=self.role != "student")
        self.replayed_lines: set[int] = set()
        self.due: dict[str, float] = {}
        self.todo: list[tuple[float, str, dict[str, Any]]] = []

    def _room(self) -> str:
        return f"{self.opts.room_prefix}-{self.n % max(1, self.opts.rooms)}"

    @property
    def ws_url(self) -> str:
        host = (self.host or "http://127.0.0.1:8080").rstrip("/")
        return host.replace("https://", "wss://").replace("http://", "ws://") + "/ws"

    def fire(self, kind: str, name: str, ms: float, length: int, exc: BaseException | None) -> None:
        if kind == "ack" and exc is not None:
            code = str(exc).rpartition(": ")[2]
            if code in RACE_CODES:
                name, exc = f"{name}:{code}", None
        self.environment.events.request.fire(
            request_type=kind,
            name=name,
            response_time=ms,
            response_length=length,
            exception=exc,
            context={},
        )

    def connect(self, last_id: int | None = None, window_start: int | None = None) -> Frame:
        client = Client(
            self.ws_url,
            self.token,
            self.room,
            fire=self.fire,
            on_frame=self._frame,
            source_address=source_address(self.opts.source_addresses, self.n),
        )
        self.client = client
        answer = client.join(last_id, window_start)
        if answer["t"] == "welcome":
            self.on_welcome(answer)
        return answer

    def on_start(self) -> None:
        try:
            self.connect()
        except ProtocolFailure:
            raise StopUser from None

    def on_stop(self) -> None:
        if self.client is not None:
            self.client.close()

    def keep_connected(self) -> bool:
        """Before each action: after a close the server chose, report it as a failure and, unless
        the protocol says to stay closed, reconnect and resume. False when the user is done."""
        client = self.client
        if client is None or not client.closed.is_set():
            return client is not None
        code = client.close_code
        self.fire(
            "connection",
            f"closed {code}",
            0.0,
            0,
            ProtocolFailure(f"the server closed the connection ({code})"),
        )
        if code in STAY_CLOSED:
            self.client = None
            return False
        self.resume_from(client)
        return self.client is not None

    def churn(self) -> None:
        """Drop the connection as a network would, and come back with the last event id."""
        if self.client is not None:
            self.client.abort()
            gevent.sleep(random.uniform(0.1, 0.5))
            self.resume_from(self.client)

    def resume_from(self, old: Client) -> None:
        """Join again after ``old``'s last event id and check the replay: nothing missed (the
        announced count, and every lecture line this process saw sent in the gap), nothing
        twice."""
        after, window_start = old.last_id, old.window_start
        # where it was as of ``after``: a resume (not a welcome) means no move in the gap, and a
        # live move right after the replay must not change which lines the gap owed it
        in_main_room = self.place.room is None
        self.replayed_lines = set()
        try:
            answer = self.connect(after, window_start)
        except ProtocolFailure:
            self.client = None
            return
        client = self.client
        assert client is not None
        if answer["t"] != "resumed":
            return  # the log no longer reached back: a fresh view (a new delivery window)
        if not client.wait_replay() or client.resume is None or not self.checks_lines:
            return
        through = client.resume.through
        # in a breakout room the lecture lines of the gap were not this receiver's; broadcasts
        # were, wherever it was
        lines = set(LEDGER.sent_everywhere.get(self.room, ()))
        if in_main_room:
            lines |= LEDGER.sent.get(self.room, set())
        sent = {i for i in lines if after < i <= through}
        missing = sent - self.replayed_lines
        if missing:
            self.fire(
                "resume",
                "lecture lines",
                0.0,
                0,
                ProtocolFailure(f"lecture lines {sorted(missing)[:5]} missing after a resume"),
            )

    def _frame(self, frame: Frame, size: int) -> None:
        kind = frame.get("t")
        if kind == "event":
            wrong = self.place.event(frame)
            if wrong is not None:
                self.fire("breakout", "isolation", 0.0, size, ProtocolFailure(wrong))
            self.on_event(frame, size)
        elif kind == "ack":
            self.on_ack(frame)
        elif kind == "welcome":
            # here, in the reader, before any event after it (connect() returns later)
            self.place.start(frame["room"], int(frame["last_id"]))
        elif kind == "view":
            self.place.view(frame["room"], int(frame["last_id"]))
            self.on_view(frame)

    def on_welcome(self, welcome: Frame) -> None:
        pass

    def on_view(self, view: Frame) -> None:
        """The place changed (``view{last_id, room}``): take the new room's state."""

    def on_event(self, event: Frame, size: int) -> None:
        pass

    def on_ack(self, ack: Frame) -> None:
        pass

    def every(self, key: str, interval_s: float, now: float) -> bool:
        """True once per ``interval_s`` (first after a random part of it), never when <= 0."""
        if interval_s <= 0:
            return False
        due = self.due.get(key)
        if due is None:
            self.due[key] = now + random.uniform(0.2, 1.0) * interval_s
            return False
        if now < due:
            return False
        self.due[key] = now + random.uniform(0.5, 1.5) * interval_s
        return True

    def send(self, kind: str, **fields: Any) -> int | None:
        client = self.client
        if client is None or client.closed.is_set():
            return None
        try:
            return client.command(kind, **fields)
        except (OSError, ProtocolFailure):
            return None


class Receiver(ClassUser):
    """A participant who measures the lecture: fan-out latency and which lines arrived."""

    abstract = True

    def on_event(self, event: Frame, size: int) -> None:
        client = self.client
        data = event.get("data") or {}
        if event.get("type") == "chat.message":
            text = str(data.get("text", ""))
            if data.get("role") == "teacher" and text.startswith((LECTURE + " ", BROADCAST + " ")):
                _, _, sent_ns = text.split(" ", 2)
                ms = (time.time_ns() - int(sent_ns)) / 1e6
                LEDGER.line_received(self.room, int(event["id"]))
                resume = client.resume if client is not None else None
                if resume is not None and int(event["id"]) <= resume.through:
                    # A line replayed after a resume: late by the reconnection, not the fan-out.
                    self.replayed_lines.add(int(event["id"]))
                    self.fire("fanout", "chat.message:replayed", ms, size, None)
                elif data.get("broadcast"):
                    self.fire("fanout", "breakout.broadcast", ms, size, None)
                else:
                    FANOUT.add(ms)
                    self.fire("fanout", "chat.message", ms, size, None)
            elif self.place.room is not None and data.get("room") == self.place.room:
                # a student's line in this receiver's breakout room
                sent_ns = text.rpartition(" ")[2]
                ms = (time.time_ns() - int(sent_ns)) / 1e6 if sent_ns.isdigit() else 0.0
                self.fire("breakout", "chat.message", ms, size, None)
        if client is not None:
            # A window is named by where it began: a resume continues it, a fresh welcome
            # (whose last_id is newer) starts another.
            self.place.seen(client.last_event_id)
            LEDGER.window(
                f"{self.identity}@{client.window_start}",
                self.room,
                client.window_start,
                client.last_event_id,
                self.place.spans(),
            )

    checks_lines = True


class TeacherUser(ClassUser):
    """One per room (``--rooms``): lectures, runs polls, pins and answers questions, calls on
    raised hands."""

    role = "teacher"
    fixed_count = 1

    def _room(self) -> str:
        workers = swarm_workers(self.opts)
        worker = max(0, getattr(self.environment.runner, "worker_index", 0))
        index = teacher_room(self.n_teacher, worker, workers, self.opts.rooms)
        return f"{self.opts.room_prefix}-{index}"

    def __init__(self, environment: Environment) -> None:
        self.n_teacher = next(_teachers)
        super().__init__(environment)
        self.seq = 0
        self.lecture_refs: set[int] = set()
        self.questions: dict[int, bool] = {}  # open question id -> pinned
        self.hands: list[str] = []
        self.poll: tuple[int, float] | None = None  # (poll id, opened at)
        self.poll_ref: int | None = None
        self.round: Round | None = None
        self.rounds = 0
        self.broadcast_refs: set[int] = set()
        self.rng = random.Random()

    def on_welcome(self, welcome: Frame) -> None:
        room = welcome["room"]
        self.questions = {
            int(q["question_id"]): bool(q["pinned"])
            for q in room.get("questions", [])
            if not q["answered"]
        }
        self.hands = [h["identity"] for h in room.get("hands", [])]

    def on_ack(self, ack: Frame) -> None:
        ref = int(ack["ref"])
        if ref in self.lecture_refs:
            self.lecture_refs.discard(ref)
            for event_id in ack.get("ids") or []:
                LEDGER.line_sent(self.room, int(event_id))
        elif ref in self.broadcast_refs:
            self.broadcast_refs.discard(ref)
            for event_id in ack.get("ids") or []:
                LEDGER.line_sent(self.room, int(event_id), everywhere=True)

    def on_event(self, event: Frame, size: int) -> None:
        kind, data = event.get("type"), event.get("data") or {}
        if kind == "question.asked":
            self.questions[int(data["question_id"])] = False
        elif kind in ("question.answered", "question.dismissed"):
            self.questions.pop(int(data["question_id"]), None)
        elif kind == "question.pinned" and int(data["question_id"]) in self.questions:
            self.questions[int(data["question_id"])] = bool(data["pinned"])
        elif kind == "hand.raised":
            self.hands.append(str(data["identity"]))
        elif kind in ("hand.lowered", "hand.called"):
            if data["identity"] in self.hands:
                self.hands.remove(data["identity"])
        elif kind == "hands.cleared":
            self.hands.clear()
        elif kind == "poll.opened" and data.get("by") == self.identity:
            self.poll = (int(data["poll_id"]), time.monotonic())
        elif (
            kind == "breakout.opened" and self.round is not None and data.get("by") == self.identity
        ):
            self.round.opened_at = time.monotonic()
        elif kind == "breakout.closed" and self.round is not None:
            self.round_closed(event, data)

    def round_closed(self, event: Frame, data: Frame) -> None:
        """Report the round's length and, for a timer's close, how late after ``ends_at`` the
        server closed it (both times the server's)."""
        r = self.round
        assert r is not None
        r.closed = True
        if r.opened_at is not None:
            ms = (time.monotonic() - r.opened_at) * 1000
            self.fire("breakout", "round", ms, len(r.rooms), None)
        ends_at = self.place.closed_ends_at
        if data.get("reason") == "timer" and ends_at is not None:
            self.fire("breakout", "timer close", float(int(event["ts"]) - ends_at), 0, None)
        elif r.timed and not r.close_sent:
            why = f"round {r.number} closed ({data.get('reason')}) without its timer"
            self.fire("breakout", "timer close", 0.0, 0, ProtocolFailure(why))

    def run_breakouts(self, now: float) -> None:
        """Open a round every ``--breakout-every-s``; send what the open round has due."""
        o = self.opts
        r = self.round
        if r is None or r.closed:
            if self.every("breakout", o.breakout_every_s, now):
                self.rounds += 1
                rooms = [f"Room {k + 1}" for k in range(max(1, o.breakout_rooms))]
                r = self.round = Round(self.rounds, rooms, o.breakout_duration_s, now)
                command = {k: v for k, v in r.open_command().items() if v is not None}
                self.send(command.pop("t"), **command)
            return
        if r.opened_at is None:
            if now - r.sent_at > 15:  # refused (reported as its ack): try again later
                self.round = None
            return
        r.members = dict(self.place.breakouts.members)
        for command in r.due(now, self.rng):
            kind = command.pop("t")
            if kind == "breakout.broadcast":
                command["text"] += f" {time.time_ns()}"
                ref = self.send(kind, **command)
                if ref is not None:
                    self.broadcast_refs.add(ref)
            else:
                self.send(kind, **command)
        if r.overdue(now, grace_s=10.0) and not r.close_sent:
            why = f"round {r.number} still open 10 s after its timer"
            self.fire("breakout", "timer close", 0.0, 0, ProtocolFailure(why))
            r.close_sent = True
            self.send("breakout.close")

    def lecture(self) -> None:
        self.seq += 1
        ref = self.send("chat.send", text=f"{LECTURE} {self.seq} {time.time_ns()}", to=None)
        if ref is not None:
            self.lecture_refs.add(ref)

    @task
    def act(self) -> None:
        if not self.keep_connected():
            raise StopUser
        now = time.monotonic()
        o = self.opts
        if self.every("lecture", o.lecture_every_s, now):
            self.lecture()
        if self.poll is None and self.every("poll", o.poll_every_s, now):
            self.send(
                "poll.open",
                question="Which one?",
                options=["a", "b", "c", "d"],
                multiple=False,
            )
        if self.poll is not None and now - self.poll[1] >= o.poll_open_s:
            self.send("poll.close", poll_id=self.poll[0])
            self.poll = None
        if self.questions and self.every("answer", o.answer_every_s, now):
            qid = min(self.questions)
            if self.questions[qid]:
                self.send("question.answer", question_id=qid)
                self.questions.pop(qid, None)
            else:
                self.send("question.pin", question_id=qid, pinned=True)
                self.questions[qid] = True
        if self.hands and self.every("call", o.call_every_s, now):
            self.send("hand.call_next")
            self.hands.pop(0)
        if o.breakout_every_s > 0:
            self.run_breakouts(now)


class StudentUser(Receiver):
    """Joins, reads everything, chats, asks, upvotes, answers polls, raises a hand; with
    ``--churn-every-s`` also drops and resumes."""

    def on_start(self) -> None:
        self.polls: dict[int, int] = {}  # open poll id -> options
        self.answered_polls: set[int] = set()
        self.questions: set[int] = set()  # open questions not upvoted by this student
        self.mine: set[int] = set()  # this student's unanswered questions
        self.hand_up = False
        self.chats = 0
        self.board: BoardClient | None = None
        #: The board of this student's breakout room while it is in one (with boards on).
        self.breakout_board: BoardClient | None = None
        self.board_refused: str | None = None
        super().on_start()
        if self.opts.board_strokes_per_min > 0:
            base = self.ws_url.removesuffix("/ws")
            board = BoardClient(base, self.token, self.room, "main", self.identity, self.fire)
            board.denials_expected = self.opts.breakout_every_s > 0
            try:
                board.connect(source_address(self.opts.source_addresses, self.n))
            except ProtocolFailure:
                return
            self.board = board
            BOARDS.setdefault(self.room, []).append(board)

    def on_view(self, view: Frame) -> None:
        self.on_welcome(view)

    def follow_board(self) -> None:
        """Keep a connection to the board of this student's breakout room (``br<round>-<i>``),
        as the web app does: closed when it leaves the room, opened when it enters one. The
        server closes a board the student may no longer open with 4404 (expected here)."""
        room = self.place.room
        want = None if room is None else self.place.breakouts.board_of(room)
        want = None if want == "main" else want
        current = self.breakout_board
        if current is not None and (current.board != want or current.closed.is_set()):
            current.close()
            self.breakout_board = current = None
        if want is None or current is not None or want == self.board_refused:
            return
        base = self.ws_url.removesuffix("/ws")
        board = BoardClient(
            base,
            self.token,
            self.room,
            want,
            self.identity,
            self.fire,
            expected_closes=frozenset({4404}),
        )
        try:
            board.connect(source_address(self.opts.source_addresses, self.n))
        except ProtocolFailure:
            return
        if board.closed.is_set():
            self.board_refused = want  # moved on meanwhile: not again until the next room
            return
        self.breakout_board = board
        BOARDS.setdefault(f"{self.room}/{want}", []).append(board)

    def on_welcome(self, welcome: Frame) -> None:
        """Take the state of a ``welcome``'s (or a ``view``'s) room: its polls, the questions of
        this student's place, its hand."""
        room = welcome["room"]
        self.polls = {
            int(p["poll_id"]): len(p["options"])
            for p in room.get("polls", [])
            if p["open"] and not p["mine"]
        }
        # Polls already open when the view was taken get their answer too, as a live one would.
        now = time.monotonic()
        for pid in self.polls:
            self.todo.append((now + random.uniform(0.5, 4.0), "poll", {"id": pid}))
        self.questions = {
            int(q["question_id"])
            for q in room.get("questions", [])
            if not q["answered"] and not q["voted"] and q["author"] != self.identity
        }
        self.mine = {
            int(q["question_id"])
            for q in room.get("questions", [])
            if q["author"] == self.identity and not q["answered"]
        }
        self.hand_up = any(h["identity"] == self.identity for h in room.get("hands", []))

    def on_event(self, event: Frame, size: int) -> None:
        super().on_event(event, size)
        kind, data = event.get("type"), event.get("data") or {}
        if kind == "poll.opened":
            pid = int(data["poll_id"])
            self.polls[pid] = len(data["options"])
            self.todo.append((time.monotonic() + random.uniform(0.5, 4.0), "poll", {"id": pid}))
        elif kind == "poll.closed":
            self.polls.pop(int(data["poll_id"]), None)
        elif kind == "question.asked":
            if data["author"] == self.identity:
                self.mine.add(int(data["question_id"]))
            else:
                self.questions.add(int(data["question_id"]))
        elif kind in ("question.answered", "question.dismissed"):
            qid = int(data["question_id"])
            self.questions.discard(qid)
            self.mine.discard(qid)
        elif kind in ("hand.lowered", "hand.called") and data.get("identity") == self.identity:
            self.hand_up = False
        elif kind == "hands.cleared":
            self.hand_up = False

    @task
    def act(self) -> None:
        if not self.keep_connected():
            raise StopUser
        now = time.monotonic()
        o = self.opts
        for item in [t for t in self.todo if t[0] <= now]:
            self.todo.remove(item)
            pid = item[2]["id"]
            if pid in self.polls and pid not in self.answered_polls:
                self.answered_polls.add(pid)
                self.send("poll.answer", poll_id=pid, choices=[random.randrange(self.polls[pid])])
        if self.every("chat", 60.0 / o.chat_per_min if o.chat_per_min > 0 else 0, now):
            self.chats += 1
            text = f"{self.identity} says {self.chats} {time.time_ns()}"
            self.send("chat.send", text=text, to=None)
        if len(self.mine) < 4 and self.every(
            "ask", 60.0 / o.ask_per_min if o.ask_per_min > 0 else 0, now
        ):
            self.send("question.ask", text=f"A question from {self.identity}?")
        if self.questions and self.every(
            "upvote", 60.0 / o.upvote_per_min if o.upvote_per_min > 0 else 0, now
        ):
            qid = random.choice(sorted(self.questions))
            self.questions.discard(qid)
            self.send("question.upvote", question_id=qid)
        if not self.hand_up and self.every(
            "hand", 60.0 / o.hand_per_min if o.hand_per_min > 0 else 0, now
        ):
            self.hand_up = True
            self.send("hand.raise")
        rate = o.board_strokes_per_min
        if self.board is not None:
            self.follow_board()
        if self.board is not None and self.every("stroke", 60.0 / rate if rate > 0 else 0, now):
            # in a breakout room 'main' is read-only: draw on the room's board
            board = self.board if self.place.room is None else self.breakout_board
            if board is not None:
                board.draw()
        if self.every("churn", o.churn_every_s, now):
            self.churn()


class LurkerUser(Receiver):
    """Connects, reads, and keeps its heartbeat: websocket-client answers the server's pings; the
    application ``ping`` goes every ``heartbeat_ms`` of the welcome."""

    heartbeat_s = 20.0

    def on_welcome(self, welcome: Frame) -> None:
        self.heartbeat_s = max(1.0, int(welcome.get("heartbeat_ms") or 20000) / 1000.0)

    @task
    def act(self) -> None:
        if not self.keep_connected():
            raise StopUser
        if self.every("ping", self.heartbeat_s, time.monotonic()):
            self.send("ping")
