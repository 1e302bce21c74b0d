"""What a subscriber's link can take: per-consumer video layers decided from its receiver's reports.

The SFU forwards encoded frames and cannot re-encode, so a subscriber whose link is slower than
the streams it receives can only be sent less: fewer temporal layers of a video (where the
publisher sends them), then no video at all from a producer, and never less audio. This module
decides which, for one subscribe connection, from what its receiver reports over RTCP:

- the receiver's estimate of the bandwidth it can take: REMB (draft-alvestrand-rmcat-remb-03),
  which Chromium and aiortc receivers send when the SFU's offer lists ``goog-remb``;
- the fraction of packets lost since the previous report (RTCP receiver report, RFC 3550 section
  6.4.2).

It is pure (no I/O, no clock of its own): :class:`LinkGovernor` is told the reports and the
consumers' measured bitrates, and answers the layer each video consumer should forward. The
transport applies the answer (:mod:`sfu.transport`).

The link is over its capacity when the estimate stays below 70 % of the video sent for 2 s (a
healthy receive-side estimate follows the incoming rate and grows past it; a dip is a hiccup), or
two receiver reports in a row lose more than a tenth. Then stepping down is immediate and as deep
as needed to fit, lowest priority first, because a link over its capacity delays and loses the
audio with the video. Stepping up is one step at a time, highest priority first, after
:attr:`GovernorSettings.step_up_dwell_s` of a link with room for it. A receive-side estimate cannot
grow much past what is received (it is capped near 1.5 x the incoming rate), so with video paused
it never shows room for video again: the governor then probes, stepping up after a quiet period and
stepping back down when loss or a falling estimate says the step did not fit; each failed probe
doubles the wait before the next (up to :attr:`GovernorSettings.probe_max_s`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class VideoLayer(StrEnum):
    """What a video consumer forwards: every frame, the base temporal layer only, or nothing."""

    ALL = "all"
    BASE = "base"
    PAUSED = "paused"


@dataclass(frozen=True, slots=True)
class GovernorSettings:
    """The governor's constants (bits per second, seconds, fractions)."""

    #: Use at most this share of the estimate (the rest absorbs bursts: keyframes, retransmits).
    headroom: float = 0.85
    #: The link is over its capacity when the estimate stays below this share of the video
    #: sent (REMB covers the video: only its m-lines carry abs-send-time) for
    #: :attr:`estimate_low_s` and at least :attr:`estimate_low_count` estimates in a row. A
    #: receive-side estimate follows the incoming rate when the link keeps up (it grows up to
    #: 1.5 x that rate) and drops to 0.85 x the measured throughput on each over-use, so an
    #: estimate near the sending rate is a healthy one, and one dip is a hiccup of the
    #: receiver (a busy machine delays its reads as a queue would) rather than a trend.
    estimate_congested: float = 0.7
    estimate_low_s: float = 2.0
    estimate_low_count: int = 3
    #: A loss fraction above this in two reports in a row means the link is over its capacity,
    #: whatever the estimate says.
    loss_congested: float = 0.10
    #: A step up is kept only while loss stays under this.
    loss_ok: float = 0.05
    #: The base layer's share of a layered video's bitrate when it was not measured (L1T3: the
    #: base is a quarter of the frames and about 40 % of the bits).
    base_share: float = 0.45
    #: Least time between two step-ups, and after a step-down before stepping up.
    step_up_dwell_s: float = 4.0
    #: The first probe of a link whose estimate shows no room waits this long; each failed
    #: probe doubles it, up to :attr:`probe_max_s`.
    probe_s: float = 8.0
    probe_max_s: float = 64.0
    #: A probe (a step up without room in the estimate) fails on loss, or on a falling
    #: estimate, within this long.
    probe_check_s: float = 3.0


@dataclass(slots=True)
class ConsumerDemand:
    """One video consumer as the governor sees it.

    Attributes:
        key: its id on the connection.
        priority: kept longest when highest (the spotlight, a screen share).
        layered: its producer sends temporal layers (so :attr:`VideoLayer.BASE` is possible).
        full_bps: its measured bitrate forwarding every frame (bit/s; 0: not measured yet).
        base_bps: its measured bitrate forwarding the base layer (0: not measured yet).
        layer: what it forwards now.
    """

    key: str
    priority: int = 0
    layered: bool = False
    full_bps: float = 0.0
    base_bps: float = 0.0
    layer: VideoLayer = VideoLayer.ALL

    def bps(self, layer: VideoLayer, settings: GovernorSettings) -> float:
        """What forwarding ``layer`` costs (bit/s)."""
        if layer is VideoLayer.PAUSED:
            return 0.0
        if layer is VideoLayer.BASE:
            return self.base_bps or self.full_bps * settings.base_share
        return self.full_bps

    def below(self) -> VideoLayer | None:
        """The next layer down (None: paused already)."""
        if self.layer is VideoLayer.ALL:
            return VideoLayer.BASE if self.layered else VideoLayer.PAUSED
        if self.layer is VideoLayer.BASE:
            return VideoLayer.PAUSED
        return None

    def above(self) -> VideoLayer | None:
        """The next layer up (None: forwarding everything already)."""
        if self.layer is VideoLayer.PAUSED:
            return VideoLayer.BASE if self.layered else VideoLayer.ALL
        if self.layer is VideoLayer.BASE:
            return VideoLayer.ALL
        return None


@dataclass(slots=True)
class _Probe:
    """A step up made without room in the estimate, until it proves itself."""

    key: str
    previous: VideoLayer
    at: float
    #: How many estimates had come before it (the ones after judge it), and the highest since.
    estimates: int
    peak_bps: float = 0.0


@dataclass
class LinkGovernor:
    """Decides the video layers of one subscribe connection.

    Feed it :meth:`report` for each receiver report or REMB, then ask :meth:`plan` (at any
    interval; it changes nothing between reports but step-up timing). Times are seconds on any
    monotonic clock, the same for every call.
    """

    settings: GovernorSettings = field(default_factory=GovernorSettings)
    #: The receiver's latest estimate (bit/s; None: it sent no REMB yet), and how many came.
    estimate_bps: float | None = None
    estimates: int = 0
    #: Loss fractions of the last two reports, newest last.
    losses: list[float] = field(default_factory=list)
    #: When the last change of any layer happened (a step-up waits for the dwell after it).
    changed_at: float = float("-inf")
    #: Quiet time before the next probe (s; starts at :attr:`GovernorSettings.probe_s`).
    probe_wait_s: float = -1.0
    _probe: _Probe | None = None
    #: The estimate count, time and estimate when the estimate was first seen below what is
    #: sent (None: it is not).
    _low_since: tuple[int, float, float] | None = None

    def __post_init__(self) -> None:
        if self.probe_wait_s < 0:
            self.probe_wait_s = self.settings.probe_s

    def report(
        self, now: float, *, estimate_bps: float | None = None, fraction_lost: float | None = None
    ) -> None:
        """A REMB (``estimate_bps``) or a receiver report's loss fraction (0..1) arrived."""
        if estimate_bps is not None:
            self.estimate_bps = float(estimate_bps)
            self.estimates += 1
        if fraction_lost is not None:
            self.losses = [*self.losses[-1:], min(1.0, max(0.0, fraction_lost))]

    @property
    def congested(self) -> bool:
        """Loss above :attr:`GovernorSettings.loss_congested` in the last two reports."""
        limit = self.settings.loss_congested
        return len(self.losses) == 2 and all(loss > limit for loss in self.losses)

    def video_bps(self, consumers: list[ConsumerDemand]) -> float:
        """The video the connection sends now (bit/s), at the consumers' layers."""
        return sum(c.bps(c.layer, self.settings) for c in consumers)

    def limit_bps(self, now: float, consumers: list[ConsumerDemand]) -> float | None:
        """What the videos may take while the link is over its capacity (bit/s); None while it
        is not (the estimate keeps up with what is sent, and loss is low)."""
        s = self.settings
        limits = []
        estimate = self.estimate_bps
        if estimate is not None and estimate < s.estimate_congested * self.video_bps(consumers):
            if self._low_since is None:
                self._low_since = (self.estimates, now, estimate)
            count, since, first = self._low_since
            # A rising estimate is a receiver ramping up again (after a pause or a step up it
            # starts from what it last received), not a link over its capacity.
            if (
                self.estimates - count + 1 >= s.estimate_low_count
                and now - since >= s.estimate_low_s
                and estimate <= first * 1.05
            ):
                limits.append(estimate * s.headroom)
        else:
            self._low_since = None
        if self.congested:
            # What is sent now, less what is lost.
            video = sum(c.bps(c.layer, s) for c in consumers)
            limits.append(video * (1 - self.losses[-1]) * s.headroom)
        return min(limits) if limits else None

    def room_bps(self) -> float | None:
        """What the videos may take as the estimate says (bit/s; None: no estimate yet)."""
        if self.estimate_bps is None:
            return None
        return self.estimate_bps * self.settings.headroom

    def plan(self, now: float, consumers: list[ConsumerDemand]) -> dict[str, VideoLayer]:
        """The layer each consumer should forward now (only the ones that change).

        While the link is over its capacity, stepping down fits the limit at once, lowest
        priority first; otherwise stepping up is one step, highest priority first, after the
        dwell, with room in the estimate or as a probe.
        """
        s = self.settings
        changes: dict[str, VideoLayer] = {}
        by_key = {c.key: c for c in consumers}
        probe = self._probe
        if probe is not None and probe.key not in by_key:
            self._probe = probe = None
        if probe is not None and self._probe_failed(now, probe):
            changes[probe.key] = by_key[probe.key].layer = probe.previous
            self._probe = None
            self.probe_wait_s = min(self.probe_wait_s * 2, s.probe_max_s)
            self.changed_at = now
            self.losses.clear()  # the step's losses are not the next decision's
            return changes
        if probe is not None and now - probe.at >= s.probe_check_s:
            self._probe = None  # it held: the next probe waits the first wait again
            self.probe_wait_s = s.probe_s

        demand = sum(c.bps(c.layer, s) for c in consumers)
        limit = self.limit_bps(now, consumers)
        if limit is not None and demand > limit:
            for consumer in sorted(consumers, key=lambda c: c.priority):
                while demand > limit and (lower := consumer.below()) is not None:
                    demand -= consumer.bps(consumer.layer, s) - consumer.bps(lower, s)
                    consumer.layer = changes[consumer.key] = lower
            if changes:
                self.changed_at = now
                self._probe = None
                # The reports so far measured the link under the old layers: the new ones are
                # judged on what comes after (else the same lossy reports, or the same low
                # estimate, step them down again at the next plan, before any report of them).
                self.losses.clear()
                self._low_since = None
            return changes

        room = self.room_bps()
        if room is None or limit is not None or now - self.changed_at < s.step_up_dwell_s:
            return changes
        for consumer in sorted(consumers, key=lambda c: -c.priority):
            higher = consumer.above()
            if higher is None:
                continue
            extra = consumer.bps(higher, s) - consumer.bps(consumer.layer, s)
            fits = demand + extra <= room and consumer.full_bps > 0
            quiet = not self.losses or self.losses[-1] <= s.loss_ok
            if not fits and not (quiet and now - self.changed_at >= self.probe_wait_s):
                return changes
            if not fits:
                self._probe = _Probe(consumer.key, consumer.layer, now, self.estimates)
                self.losses.clear()  # the probe is judged on the reports after it
            consumer.layer = changes[consumer.key] = higher
            self.changed_at = now
            return changes
        return changes

    def _probe_failed(self, now: float, probe: _Probe) -> bool:
        """Whether a report after the probe says it did not fit: loss above
        :attr:`GovernorSettings.loss_ok`, or an estimate falling (a receive-side estimator
        lowers its estimate on over-use; after a pause it rises from what it last received,
        so its level says nothing yet)."""
        s = self.settings
        if now - probe.at > s.probe_check_s:
            return False
        lossy = bool(self.losses) and self.losses[-1] > s.loss_ok
        falling = False
        if self.estimates > probe.estimates and self.estimate_bps is not None:
            probe.peak_bps = max(probe.peak_bps, self.estimate_bps)
            falling = self.estimate_bps < 0.85 * probe.peak_bps
        return lossy or falling
