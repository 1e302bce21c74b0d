"""Audio continuity, as ``bench.bad_network`` measures it: how much of a publisher's Opus stream a
subscriber could have played, from the RTP packets that reached it and when. Pure: no I/O, no clock.

A subscriber that plays audio holds each 20 ms frame in a jitter buffer until its play-out time,
then plays it or, if it has not come, conceals the gap (a decoder's packet-loss concealment
repeats and fades the last sound). Concealment is not the teacher's voice, so it never counts.
Here the play-out time of the frame with RTP timestamp ``ts`` (RFC 3550 section 5.1; Opus clocks
at 48 kHz, RFC 7587 section 4.1) is::

    play(ts) = min over every packet received of (arrival_s - ts / 48000) + ts / 48000 + allowance_s

that is, a fixed jitter-buffer delay of ``allowance_s`` after the fastest packet's transit: the
frames are expected on a 960-tick grid (20 ms at 48 kHz) anchored at the first packet received.
Of the frames whose play-out time falls in the measured window, a frame is

- **on time** when its packet arrived by ``play(ts)``: it would have been played;
- **late** when its packet arrived after: a jitter buffer drops it (the gap was concealed);
- **missing** when its packet never arrived: lost on the link, or not sent (the SFU dropped it).

Continuity is on time / expected. Frames are told apart by RTP timestamp, not sequence number:
the SFU's sender numbers the packets it sends, so a frame it dropped leaves no sequence gap, only
a timestamp one.

**Opus in-band FEC** (RFC 6716 section 2.1.7): a SILK or hybrid packet may carry a low-bitrate
copy of the previous frame (LBRR). A decoder that has packet ``k + 1`` when frame ``k`` is due can
rebuild ``k`` from it. :attr:`Continuity.fec_recoverable` counts the frames not on time whose next
frame was on time by the first one's play-out and carried LBRR (:func:`opus_has_lbrr`), so
``with_fec`` is what a FEC-decoding receiver (Chromium's NetEq) could have played. aiortc's
receiver does not decode FEC: the bench's subscribers measure, they do not decode.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

#: Opus's RTP clock (RFC 7587 section 4.1) and one 20 ms frame in it.
CLOCK_RATE = 48_000
FRAME_TICKS = 960


@dataclass(frozen=True, slots=True)
class Arrival:
    """One audio RTP packet received: its RTP timestamp (32-bit, as sent), when it arrived
    (seconds, any monotonic clock), and whether its payload carries LBRR."""

    timestamp: int
    arrival_s: float
    lbrr: bool = False


@dataclass(frozen=True, slots=True)
class Continuity:
    """A subscriber's audio over a window (counts of 20 ms frames; see the module)."""

    expected: int
    on_time: int
    late: int
    missing: int
    fec_recoverable: int

    @property
    def share(self) -> float:
        """On time / expected (0..1); 0 when nothing was expected."""
        return self.on_time / self.expected if self.expected else 0.0

    @property
    def with_fec(self) -> float:
        """(On time + recoverable by in-band FEC) / expected (0..1)."""
        return (self.on_time + self.fec_recoverable) / self.expected if self.expected else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "share": self.share, "with_fec": self.with_fec}


def continuity(
    arrivals: Iterable[Arrival],
    start_s: float,
    end_s: float,
    allowance_s: float,
    *,
    clock_rate: int = CLOCK_RATE,
    frame_ticks: int = FRAME_TICKS,
) -> Continuity:
    """Audio continuity over the window ``[start_s, end_s)`` of play-out times (see the module).

    Args:
        arrivals: every audio packet the subscriber received, in arrival order, from the start
            of its stream (the earliest ones fix the fastest transit and the grid).
        start_s, end_s: the measured window, on the clock of ``arrival_s``.
        allowance_s: the jitter buffer's delay after the fastest packet's transit.

    Raises:
        ValueError: an empty or reversed window, or a negative allowance.
    """
    if end_s <= start_s or allowance_s < 0:
        raise ValueError("need start_s < end_s and allowance_s >= 0")
    first: dict[int, float] = {}  # grid index -> earliest arrival
    lbrr: dict[int, bool] = {}
    offset = float("inf")  # the fastest transit, s: arrival - extended timestamp / clock rate
    previous = extended = 0
    started = False
    for packet in arrivals:
        if started:
            # RFC 3550 timestamps wrap at 2**32: step by the signed 32-bit difference.
            extended += (packet.timestamp - previous + 2**31) % 2**32 - 2**31
        started, previous = True, packet.timestamp
        offset = min(offset, packet.arrival_s - extended / clock_rate)
        index = round(extended / frame_ticks)
        if index not in first or packet.arrival_s < first[index]:
            first[index] = packet.arrival_s
        lbrr[index] = lbrr.get(index, False) or packet.lbrr
    if not started:
        return Continuity(0, 0, 0, 0, 0)

    def play(index: int) -> float:
        return offset + index * frame_ticks / clock_rate + allowance_s

    frame_s = frame_ticks / clock_rate
    lo = int((start_s - offset - allowance_s) // frame_s) - 1
    hi = int((end_s - offset - allowance_s) // frame_s) + 1
    expected = on_time = late = missing = recoverable = 0
    for index in range(lo, hi + 1):
        due = play(index)
        if not start_s <= due < end_s:
            continue
        expected += 1
        arrived = first.get(index)
        if arrived is not None and arrived <= due:
            on_time += 1
            continue
        if arrived is None:
            missing += 1
        else:
            late += 1
        after = first.get(index + 1)
        if after is not None and after <= due and lbrr.get(index + 1, False):
            recoverable += 1
    return Continuity(expected, on_time, late, missing, recoverable)


# -- Opus: does a packet carry LBRR? ------------------------------------------------------------


def opus_has_lbrr(packet: bytes) -> bool:
    """Whether an Opus packet carries an in-band FEC copy of the previous frame (LBRR).

    Only SILK and hybrid packets can (TOC configurations 0-15, RFC 6716 section 3.1); the flag is
    read from the first channel's SILK header: one VAD bit per SILK frame (one for 10 and 20 ms,
    two for 40, three for 60), then the LBRR flag, each a range-coded bit of probability 1/2
    (sections 4.1 and 4.2.3). Packets with more than one Opus frame (TOC code 1-3) are not read:
    False.
    """
    if len(packet) < 2:
        return False
    config, code = packet[0] >> 3, packet[0] & 0x03
    if config >= 16 or code != 0:
        return False
    ms = (10, 20, 40, 60)[config % 4] if config < 12 else (10, 20)[config % 2]
    silk_frames = max(1, ms // 20)
    decoder = _RangeDecoder(packet[1:])
    for _ in range(silk_frames):
        decoder.bit()  # VAD
    return decoder.bit()


class _RangeDecoder:
    """The start of RFC 6716 section 4.1's range decoder: enough to read uniform bits."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0
        self._rem = self._byte()
        self._val = 127 - (self._rem >> 1)  # section 4.1.1
        self._rng = 128
        self._normalize()

    def _byte(self) -> int:
        b = self._data[self._pos] if self._pos < len(self._data) else 0
        self._pos += 1
        return b

    def _normalize(self) -> None:
        # Section 4.1.2.1: keep rng above 2**23, reading one byte at a time.
        while self._rng <= 1 << 23:
            self._rng <<= 8
            new = self._byte()
            sym = ((self._rem << 8) | new) >> 1
            self._rem = new
            self._val = ((self._val << 8) + (255 & ~sym)) & 0x7FFFFFFF

    def bit(self) -> bool:
        """One bit of probability 1/2 (``ec_dec_bit_logp(1)``, section 4.1.3.2)."""
        s = self._rng >> 1
        one = self._val < s
        if one:
            self._rng = s
        else:
            self._val -= s
            self._rng -= s
        self._normalize()
        return one
