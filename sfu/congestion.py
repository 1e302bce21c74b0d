"""What a subscriber's link can take: per-consumer video layers decided from its receiver's reports.

The SFU forwards encoded frames and cannot re-encode, so a subscriber whose link is slower than
the streams it receives can only be sent less: fewer temporal layers of a video (where the
publisher sends them), then no video at all from a producer, and never less audio. This module
decides which, for one subscribe connection, from what its receiver reports over RTCP:

- the receiver's estimate of the bandwidth it can take: REMB (draft-alvestrand-rmcat-remb-03),
  which Chromium and aiortc receivers send when the SFU's offer lists ``goog-remb``;
- the fraction of packets lost since the previous report (RTCP receiver report, RFC 3550 section
  6.4.2), per stream;
- the round trip, from the report blocks' LSR and DLSR (RFC 3550 section 6.4.1): above the least
  one seen, it is the queue standing at the link's bottleneck.

It is pure (no I/O, no clock of its own): :class:`LinkGovernor` is told the reports and the
consumers' measured bitrates, and answers the layer each video consumer should forward. The
transport applies the answer (:mod:`sfu.transport`).

The link is over its capacity when the estimate stays below 70 % of the video sent for 2 s (a
healthy receive-side estimate follows the incoming rate and grows past it; a dip is a hiccup),
two receiver reports in a row about a stream lose more than a tenth, or the round trip stays 0.2 s
above its least for a second (a full buffer loses little, and a receive-side estimate does not
see a queue that no longer grows, but everything waits in it). Then stepping down is immediate
and as deep as needed to fit, lowest priority first, because a link over its capacity delays and
loses the audio with the video. Stepping up is one step at a time, highest priority first, after
:attr:`GovernorSettings.step_up_dwell_s` of a link with room for it. A receive-side estimate cannot
grow much past what is received (it is capped near 1.5 x the incoming rate), so with video paused
it never shows room for video again: the governor then probes, stepping up after a quiet period.
Every step up, with room in the estimate or as a probe, is judged for
:attr:`GovernorSettings.probe_check_s`: loss or a falling estimate undoes it, and each step that
is undone doubles the wait before the next (up to :attr:`GovernorSettings.probe_max_s`); one that
holds resets it. A probe to more than 4 times what the link carried when it was last over its
capacity (a 1 Mbit/s camera to a link that carried 60 kbit/s of it) waits the longest wait: it
would fill the buffer of a link that weak, and the audio would wait in it. A receive-side
estimate can read above what the link takes, so without the judging the governor would refill a
slow link's buffer every few seconds, and the student's commands and sound would wait behind the
video each time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

#: The most streams whose reports the governor keeps (a connection's own senders; a receiver
#: reporting on made-up SSRCs cannot grow it).
MAX_STREAMS = 16


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
    #: The link is over its capacity when the round trip stays more than this above the least
    #: seen (a queue building up at its bottleneck: a slow link's buffer holds seconds, and the
    #: student's commands and sound wait in it behind the video) over at least
    #: :attr:`queue_delay_s`; a step up is undone at the first such round trip after it.
    queue_delay_congested_s: float = 0.2
    queue_delay_s: float = 1.0
    #: A stream's loss counts for this long after its last report (a receiver stops reporting
    #: on a stream it no longer receives, RFC 3550 section 6.4).
    report_stale_s: float = 5.0
    #: The base layer's share of a layered video's bitrate when it was not measured (L1T3: the
    #: base is a quarter of the frames and about 40 % of the bits).
    base_share: float = 0.45
    #: Least time between two step-ups, and after a step-down before stepping up.
    step_up_dwell_s: float = 4.0
    #: The first probe of a link whose estimate shows no room waits this long; each failed
    #: probe doubles it, up to :attr:`probe_max_s`.
    probe_s: float = 8.0
    probe_max_s: float = 64.0
    #: A probe to more than this many times what the link carried when it was last over its
    #: capacity waits :attr:`probe_max_s`.
    probe_reach: float = 4.0
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
    #: Loss fractions of the last two reports about each stream (RTP SSRC), newest last; at
    #: most :data:`MAX_STREAMS` streams, the longest silent forgotten first.
    losses: dict[int, list[float]] = field(default_factory=dict)
    #: When the last change of any layer happened (a step-up waits for the dwell after it).
    changed_at: float = float("-inf")
    #: Quiet time before the next probe (s; starts at :attr:`GovernorSettings.probe_s`).
    probe_wait_s: float = -1.0
    #: After a step up that did not hold, the least time before any other (s; 0 once one
    #: holds): the estimate that allowed it may allow it again.
    backoff_s: float = 0.0
    #: What the link carried of the videos when it was last found over its capacity (bit/s:
    #: the limit the step down fitted, less the headroom; None since a step up held).
    capacity_bps: float | None = None
    _probe: _Probe | None = None
    #: The estimate count, time and estimate when the estimate was first seen below what is
    #: sent (None: it is not).
    _low_since: tuple[int, float, float] | None = None
    #: The extended highest sequence number of the last report about each stream.
    _sequences: dict[int, int] = field(default_factory=dict)
    #: When each stream was last reported on.
    _reported_at: dict[int, float] = field(default_factory=dict)
    #: The least round trip measured (s; None: none yet), and the first and the last of the
    #: round trips in a row above it by more than the queue delay (None: the last was not).
    min_rtt_s: float | None = None
    _queued: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if self.probe_wait_s < 0:
            self.probe_wait_s = self.settings.probe_s

    def report(
        self,
        now: float,
        *,
        estimate_bps: float | None = None,
        fraction_lost: float | None = None,
        stream: int = 0,
        highest_sequence: int | None = None,
        rtt_s: float | None = None,
    ) -> None:
        """A REMB (``estimate_bps``) or a receiver report block's loss fraction (0..1) about
        ``stream`` (its SSRC) arrived. Each stream is judged on its own reports: a receiver
        reports each stream it receives at its own pace (its audio's and video's in turn). A
        block with the same extended highest sequence number as the stream's last one reports
        the same interval again (RFC 3550 section 6.4.1) and is not counted twice. ``rtt_s`` is
        a round trip measured from a report block (its LSR and DLSR, section 6.4.1), seconds."""
        if rtt_s is not None and rtt_s >= 0:
            self.min_rtt_s = rtt_s if self.min_rtt_s is None else min(self.min_rtt_s, rtt_s)
            if rtt_s - self.min_rtt_s > self.settings.queue_delay_congested_s:
                self._queued = (self._queued[0] if self._queued else now, now)
            else:
                self._queued = None
        if estimate_bps is not None:
            self.estimate_bps = float(estimate_bps)
            self.estimates += 1
        if fraction_lost is not None:
            if highest_sequence is not None and self._sequences.get(stream) == highest_sequence:
                # The same report again, or nothing arrived since (a paused video): nothing new
                # to judge the stream on (its loss goes stale, report_stale_s).
                return
            self._reported_at[stream] = now
            previous = self.losses.pop(stream, [])
            self.losses[stream] = [*previous[-1:], min(1.0, max(0.0, fraction_lost))]
            self._sequences.pop(stream, None)
            if highest_sequence is not None:
                self._sequences[stream] = highest_sequence
            for kept in (self.losses, self._sequences, self._reported_at):
                while len(kept) > MAX_STREAMS:
                    del kept[next(iter(kept))]

    @property
    def congested(self) -> bool:
        """Loss above :attr:`GovernorSettings.loss_congested` in the last two reports about some
        stream."""
        limit = self.settings.loss_congested
        return any(len(two) == 2 and min(two) > limit for two in self.losses.values())

    @property
    def latest_loss(self) -> float:
        """The highest loss in the latest report about each stream (0 before any)."""
        return max((two[-1] for two in self.losses.values()), default=0.0)

    @property
    def queued(self) -> bool:
        """The round trips have stayed above the least one by more than the queue delay for
        :attr:`GovernorSettings.queue_delay_s`: a queue stands at the bottleneck."""
        return (
            self._queued is not None
            and self._queued[1] - self._queued[0] >= self.settings.queue_delay_s
        )

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
        video = sum(c.bps(c.layer, s) for c in consumers)
        if self.congested:
            # What is sent now, less what is lost.
            limits.append(video * (1 - self.latest_loss) * s.headroom)
        if self.queued:
            # More than the link drains: less than is sent now.
            limits.append(video * s.headroom)
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
        for stream, at in self._reported_at.items():
            if now - at > s.report_stale_s:  # the receiver no longer reports it: not lossy
                self.losses.pop(stream, None)
        probe = self._probe
        if probe is not None and probe.key not in by_key:
            self._probe = probe = None
        if probe is not None and self._probe_failed(now, probe):
            changes[probe.key] = by_key[probe.key].layer = probe.previous
            self._probe = None
            self.probe_wait_s = min(self.probe_wait_s * 2, s.probe_max_s)
            self.backoff_s = self.probe_wait_s
            self.changed_at = now
            self.losses.clear()  # the step's losses are not the next decision's
            return changes
        if probe is not None and now - probe.at >= s.probe_check_s:
            self._probe = None  # it held: the next probe waits the first wait again
            self.probe_wait_s = s.probe_s
            self.backoff_s = 0.0
            self.capacity_bps = None

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
                self.capacity_bps = limit / s.headroom
                # The reports so far measured the link under the old layers: the new ones are
                # judged on what comes after (else the same lossy reports, the same low estimate
                # or the same long round trips step them down again at the next plan, before any
                # report of them; the queue drains from now).
                self.losses.clear()
                self._low_since = None
                self._queued = None
            return changes

        room = self.room_bps()
        wait = max(s.step_up_dwell_s, self.backoff_s)
        if room is None or limit is not None or now - self.changed_at < wait:
            return changes
        for consumer in sorted(consumers, key=lambda c: -c.priority):
            higher = consumer.above()
            if higher is None:
                continue
            extra = consumer.bps(higher, s) - consumer.bps(consumer.layer, s)
            fits = demand + extra <= room and consumer.full_bps > 0
            quiet = self.latest_loss <= s.loss_ok
            # A step far beyond what the link carried when it was last over its capacity (a
            # 1 Mbit/s camera to a link that carried 60 kbit/s of it) would fill the link's
            # buffer and hold its sound back until undone: it is tried only at the longest wait.
            # (A receiver's estimate is no guide here: aiortc's reads 330-530 kbit/s with 50
            # kbit/s of audio arriving.)
            capacity = self.capacity_bps
            reach = capacity is None or demand + extra <= s.probe_reach * capacity
            probe_wait = self.probe_wait_s if reach else s.probe_max_s
            if not fits and not (quiet and now - self.changed_at >= probe_wait):
                return changes
            # Every step up is judged on the reports after it, as a probe: a receive-side
            # estimate can read above what the link takes (it follows what arrives, up to
            # 1.5 x), and a step that overfills the link is undone and waited out.
            self._probe = _Probe(consumer.key, consumer.layer, now, self.estimates)
            self.losses.clear()
            self._queued = None
            consumer.layer = changes[consumer.key] = higher
            self.changed_at = now
            return changes
        return changes

    def _probe_failed(self, now: float, probe: _Probe) -> bool:
        """Whether a report after the probe says it did not fit: loss above
        :attr:`GovernorSettings.loss_ok`, a round trip showing a queue, or an estimate falling
        (a receive-side estimator
        lowers its estimate on over-use; after a pause it rises from what it last received,
        so its level says nothing yet)."""
        s = self.settings
        if now - probe.at > s.probe_check_s:
            return False
        lossy = self.latest_loss > s.loss_ok or self._queued is not None
        falling = False
        if self.estimates > probe.estimates and self.estimate_bps is not None:
            probe.peak_bps = max(probe.peak_bps, self.estimate_bps)
            falling = self.estimate_bps < 0.85 * probe.peak_bps
        return lossy or falling
