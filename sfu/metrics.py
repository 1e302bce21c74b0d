"""The SFU worker's metrics, read at scrape time (nothing is counted twice on the media path)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from .congestion import VideoLayer
from .passthrough import STATS

if TYPE_CHECKING:
    from .worker import Worker


class WorkerCollector(Collector):
    """``liveclass_sfu_*``: routers, producers, consumers, frames received as encoded packets,
    RTP packets and bytes forwarded, keyframe requests, consumer skips, and refused encode calls
    (always 0 for a forwarding SFU)."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        routers = list(self.worker.routers.values())
        producers = [p for r in routers for p in r.producers.values()]
        consumers = [c for p in producers for c in p.consumers]
        yield GaugeMetricFamily("liveclass_sfu_routers", "Routers (media rooms)", len(routers))
        yield GaugeMetricFamily("liveclass_sfu_producers", "Producers (tracks in)", len(producers))
        yield GaugeMetricFamily("liveclass_sfu_consumers", "Consumers (tracks out)", len(consumers))
        yield CounterMetricFamily(
            "liveclass_sfu_frames_received",
            "Encoded frames received (pass-through, never decoded)",
            value=STATS.frames_received,
        )
        yield CounterMetricFamily(
            "liveclass_sfu_encode_refusals",
            "Attempts to encode a frame in the SFU (refused; forwarding never encodes)",
            value=STATS.encode_refusals,
        )
        yield CounterMetricFamily(
            "liveclass_sfu_packets_forwarded",
            "RTP packets sent to subscribers (encoded frames packetized, never re-encoded)",
            value=STATS.packets_forwarded,
        )
        yield CounterMetricFamily(
            "liveclass_sfu_bytes_forwarded",
            "RTP payload bytes sent to subscribers (before SRTP and headers)",
            value=STATS.bytes_forwarded,
        )
        yield CounterMetricFamily(
            "liveclass_sfu_keyframe_requests",
            "PLIs sent to publishers",
            value=STATS.keyframe_requests,
        )
        by_layer = GaugeMetricFamily(
            "liveclass_sfu_video_consumers",
            "Video consumers by the layer their subscriber's link lets through (all, base, paused)",
            labels=["layer"],
        )
        changes = CounterMetricFamily(
            "liveclass_sfu_layer_changes",
            "Video consumers moved to a layer by their subscriber's link",
            labels=["layer"],
        )
        for layer in VideoLayer:
            by_layer.add_metric(
                [layer.value], sum(1 for c in consumers if c.kind == "video" and c.layer is layer)
            )
            changes.add_metric([layer.value], STATS.layer_changes[layer])
        yield by_layer
        yield changes
        yield CounterMetricFamily(
            "liveclass_sfu_consumer_skips",
            "Times a consumer fell behind, dropped its queue and skipped to the next keyframe",
            value=STATS.consumer_skips,
        )
