"""The pass/fail gate of a run: targets from the command line, each compared with what was measured.

A target left unset is not checked. A target whose measure has no sample (no fan-out line was
received, no command was acknowledged) fails: a gate that passes on an empty run would let a broken
swarm through CI.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Targets:
    fanout_p95_ms: float | None = None
    ack_p99_ms: float | None = None
    join_failures: int | None = None
    delivery_ratio: float | None = None
    media_first_frame_ms: float | None = None


@dataclass(frozen=True)
class Measured:
    fanout_p95_ms: float | None
    ack_p99_ms: float | None
    join_failures: int
    delivery_ratio: float | None
    #: The slowest subscriber's time to first video frame; None when one got none.
    media_first_frame_ms: float | None = None


@dataclass(frozen=True)
class Verdict:
    name: str
    target: str
    measured: str
    ok: bool

    def line(self) -> str:
        verdict = "PASS" if self.ok else "FAIL"
        return f"  {verdict}  {self.name:<16} target {self.target:<12} measured {self.measured}"


def _fmt(value: float | None, unit: str = "") -> str:
    return "no sample" if value is None else f"{value:.3f}{unit}"


def evaluate(targets: Targets, measured: Measured) -> list[Verdict]:
    """One verdict per target that is set, in a fixed order."""
    out: list[Verdict] = []
    if targets.fanout_p95_ms is not None:
        v = measured.fanout_p95_ms
        out.append(
            Verdict(
                "fan-out p95",
                f"<= {targets.fanout_p95_ms:g} ms",
                _fmt(v, " ms"),
                v is not None and v <= targets.fanout_p95_ms,
            )
        )
    if targets.ack_p99_ms is not None:
        v = measured.ack_p99_ms
        out.append(
            Verdict(
                "ack p99",
                f"<= {targets.ack_p99_ms:g} ms",
                _fmt(v, " ms"),
                v is not None and v <= targets.ack_p99_ms,
            )
        )
    if targets.join_failures is not None:
        out.append(
            Verdict(
                "join failures",
                f"<= {targets.join_failures}",
                str(measured.join_failures),
                measured.join_failures <= targets.join_failures,
            )
        )
    if targets.delivery_ratio is not None:
        v = measured.delivery_ratio
        out.append(
            Verdict(
                "delivery ratio",
                f">= {targets.delivery_ratio:g}",
                "no sample" if v is None else f"{v:.6f}",
                v is not None and v >= targets.delivery_ratio,
            )
        )
    if targets.media_first_frame_ms is not None:
        v = measured.media_first_frame_ms
        out.append(
            Verdict(
                "media 1st frame",
                f"<= {targets.media_first_frame_ms:g} ms",
                _fmt(v, " ms"),
                v is not None and v <= targets.media_first_frame_ms,
            )
        )
    return out
