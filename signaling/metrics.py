"""Prometheus metrics of one signaling node (`liveclass_` prefix, base units, no room labels)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector


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
            "liveclass_resumes_total", "Reconnects answered with the missed events", registry=r
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
