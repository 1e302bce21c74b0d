"""Prometheus metrics of one signaling node (`liveclass_` prefix, base units, no room labels)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

#: Latency buckets (seconds) of the command and delivery histograms: the classroom's target is
#: well under a second, so they are fine below 100 ms and coarse past it.
LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
)  # fmt: skip
#: How a reconnect with a last event id was answered (``liveclass_resumes_total{outcome}``):
#: the missed events, a fresh welcome (the log no longer reached back, or the participant's
#: place changed), or a refusal.
RESUME_OUTCOMES = ("exact", "snapshot", "refused")


class FrameTally(Collector):
    """Frames queued to clients, counted with a plain integer on the fan-out hot path and
    exposed as ``liveclass_frames_sent_total``."""

    def __init__(self) -> None:
        self.frames = 0

    def collect(self) -> Iterator[CounterMetricFamily]:
        yield CounterMetricFamily(
            "liveclass_frames_sent", "Frames queued to clients", value=self.frames
        )


class Metrics:
    """The node's metrics in their own registry, exposed at ``/metrics``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        ProcessCollector(registry=r)  # process_*: memory, CPU, open files (Linux /proc)
        self.ready = Gauge(
            "liveclass_ready", "1 while /readyz answers 200 (this node can serve joins)", registry=r
        )
        self.connections = Gauge(
            "liveclass_connections", "Open classroom WebSocket connections", registry=r
        )
        self.rooms = Gauge("liveclass_rooms", "Rooms with state loaded on this node", registry=r)
        self.joins = Counter("liveclass_joins_total", "Joins admitted", registry=r)
        self.join_rejections = Counter(
            "liveclass_join_rejections_total", "Joins refused, by error code", ["code"], registry=r
        )
        self.frames_received = Counter(
            "liveclass_frames_received_total", "Frames received from clients", registry=r
        )
        self.frames_sent = FrameTally()
        r.register(self.frames_sent)
        self.events_appended = Counter(
            "liveclass_events_appended_total", "Room events committed to the store", registry=r
        )
        self.command_errors = Counter(
            "liveclass_command_errors_total",
            "Error frames sent, by error code",
            ["code"],
            registry=r,
        )
        self.slow_consumers = Counter(
            "liveclass_slow_consumers_total", "Connections closed for falling behind", registry=r
        )
        self.resumes = Counter(
            "liveclass_resumes",
            "Joins with a last event id, by outcome: exact (the missed events), snapshot (a "
            "fresh welcome), refused",
            ["outcome"],
            registry=r,
        )
        for outcome in RESUME_OUTCOMES:
            self.resumes.labels(outcome)
        self.command_seconds = Histogram(
            "liveclass_command_seconds",
            "From a command's frame read to its ack or error queued, by command type",
            ["type"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.delivery_seconds = Histogram(
            "liveclass_delivery_seconds",
            "From an event's decision (its ts; then committed) to its frames handed to every "
            "recipient's socket or send queue on this node",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.gap_fills = Counter(
            "liveclass_gap_fills",
            "Times a room read events it missed on the bus from the store",
            registry=r,
        )
        self.send_queue_bytes = Gauge(
            "liveclass_send_queue_bytes",
            "Payload bytes waiting in the send queues of this node's connections",
            registry=r,
        )
        self.turn_credentials = Counter(
            "liveclass_turn_credentials",
            "TURN credentials issued (one per TURN server per join with media)",
            registry=r,
        )
        self.views = Counter(
            "liveclass_views_total",
            "view frames sent: a participant's place changed (breakout rooms)",
            registry=r,
        )
        self.snapshots_saved = Counter(
            "liveclass_room_snapshots_saved_total",
            "Room state snapshots stored (the log is trimmed behind each)",
            registry=r,
        )
        self.board_connections = Gauge(
            "liveclass_board_connections", "Open whiteboard WebSocket connections", registry=r
        )
        self.board_closes = Counter(
            "liveclass_board_closes_total",
            "Whiteboard connections closed for an error, by close code",
            ["code"],
            registry=r,
        )
        self.append_seconds = Histogram(
            "liveclass_append_seconds",
            "Time to commit one batch of commands' events to the store",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
            registry=r,
        )
        self.batch_commands = Histogram(
            "liveclass_batch_commands",
            "Commands (and joins) decided together and committed in one append",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
            registry=r,
        )
        self.append_conflicts = Counter(
            "liveclass_append_conflicts_total",
            "Appends another node's append got in before (the batch is decided again)",
            registry=r,
        )


class BoardFigures(Protocol):
    """What the whiteboard service counts (:class:`whiteboard.service.WhiteboardService`)."""

    @property
    def boards(self) -> int: ...

    @property
    def board_bytes(self) -> int: ...

    @property
    def counts(self) -> BoardCounts: ...


class BoardCounts(Protocol):
    updates: int
    compactions: int


class BoardCollector(Collector):
    """``liveclass_boards``, ``liveclass_board_bytes``, ``liveclass_board_updates_total`` and
    ``liveclass_board_compactions_total``, read from the whiteboard service at scrape time."""

    def __init__(self, service: BoardFigures) -> None:
        self.service = service

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        service = self.service
        yield GaugeMetricFamily("liveclass_boards", "Whiteboards loaded", service.boards)
        yield GaugeMetricFamily(
            "liveclass_board_bytes",
            "Stored update bytes of the loaded whiteboards (what compaction keeps down)",
            service.board_bytes,
        )
        yield CounterMetricFamily(
            "liveclass_board_updates",
            "Whiteboard updates committed to the store",
            value=service.counts.updates,
        )
        yield CounterMetricFamily(
            "liveclass_board_compactions",
            "Whiteboard compactions (a board's updates merged into one)",
            value=service.counts.compactions,
        )


class RedisFigures(Protocol):
    """What a Redis Cluster node counts (:class:`signaling.redis_cluster.ClusterRouter` and
    :class:`signaling.redis_subscriber.ShardedSubscriber`)."""

    errors: int
    failovers: int
    covered: bool
    without_replica: frozenset[tuple[str, int]]


class RedisCollector(Collector):
    """``liveclass_redis_*`` of a cluster node, read at scrape time."""

    def __init__(self, router: RedisFigures, reconnects: Callable[[], int]) -> None:
        self.router = router
        self.reconnects = reconnects

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        router = self.router
        yield CounterMetricFamily(
            "liveclass_redis_errors",
            "Redis operations that failed (a node unreachable, or redirects that did not settle)",
            value=router.errors,
        )
        yield CounterMetricFamily(
            "liveclass_redis_failovers",
            "Masters this node saw replaced by another for their slots",
            value=router.failovers,
        )
        yield CounterMetricFamily(
            "liveclass_redis_reconnects",
            "Sharded pub/sub connections lost and subscribed again",
            value=self.reconnects(),
        )
        yield GaugeMetricFamily(
            "liveclass_redis_masters_without_replica",
            "Masters serving slots with no live replica (their writes are not waited on)",
            len(router.without_replica),
        )
        yield GaugeMetricFamily(
            "liveclass_redis_cluster_covered",
            "1 when every slot has a live master",
            1 if router.covered else 0,
        )
