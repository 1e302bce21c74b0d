"""Which lost packets a subscriber's NACKs may have resent (RFC 4585 section 6.2.1, Generic NACK).

aiortc's sender resends every packet a NACK names that is still in its history (the last 128 it
sent), each time it is named. A receiver names a missing packet again in each NACK until it
arrives, and aiortc's own receiver does so at every new gap, so on a link that loses much the
same packets go out again and again and fill it further; a receiver that crafts NACKs could have
the SFU send its whole history back many times a second. As mediasoup and libwebrtc do, a packet
is resent at most once a round trip (a resend sooner cannot have been reported lost yet) and, here,
at most :data:`MAX_RESENDS` times.

Pure (no I/O, no clock of its own): :class:`ResendLimiter` is told each NACK's sequence numbers
and answers the ones to resend. The transport applies it (:mod:`sfu.transport`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

#: The most times one packet is resent.
MAX_RESENDS = 3
#: The least time between two resends of one packet when the round trip is not known yet (s),
#: and the least whatever it is (a loopback round trip is well under a millisecond).
DEFAULT_RTT_S = 0.1
MIN_GAP_S = 0.01
#: A packet's resends are forgotten this long after its last (s): its sequence number may name
#: another packet by then (16 bits wrap), and aiortc's history of 128 packets has moved on.
FORGET_S = 2.0
#: The most packets whose resends are remembered (twice aiortc's history).
MAX_TRACKED = 256


@dataclass
class ResendLimiter:
    """The resends of one sender's packets. Times are seconds on any monotonic clock."""

    max_resends: int = MAX_RESENDS
    #: Sequence number -> (when last resent, how many times), the least recently named first;
    #: at most :data:`MAX_TRACKED`.
    _resent: dict[int, tuple[float, int]] = field(default_factory=dict)

    def allow(
        self,
        sequence_numbers: Iterable[int],
        now: float,
        rtt_s: float | None = None,
        kept: Callable[[int], bool] = lambda number: True,
    ) -> list[int]:
        """Of the 16-bit RTP sequence numbers a NACK names, the ones to resend now, each once
        and in the NACK's order: ones the sender still ``kept`` (in its history: only those are
        remembered, so naming made-up numbers cannot push real ones out), not resent within the
        round trip ``rtt_s`` (seconds; None: not known, :data:`DEFAULT_RTT_S`), nor
        :attr:`max_resends` times already."""
        gap = max(MIN_GAP_S, DEFAULT_RTT_S if rtt_s is None else rtt_s)
        allowed = []
        for number in sequence_numbers:
            number &= 0xFFFF
            if not kept(number):
                continue
            last = self._resent.pop(number, None)
            if last is not None and now - last[0] > FORGET_S:
                last = None
            if last is not None and (now - last[0] < gap or last[1] >= self.max_resends):
                self._resent[number] = last
                continue
            self._resent[number] = (now, 1 if last is None else last[1] + 1)
            allowed.append(number)
            while len(self._resent) > MAX_TRACKED:
                del self._resent[next(iter(self._resent))]
        return allowed
