"""The publisher's camera in ``bench.sfu``: a VP8 clip encoded once, before the runs, and played
in a loop at 30 fps, so every SFU forwards the same bytes and the publisher spends no CPU encoding
during the measurement. And its microphone in ``bench.bad_network``: an Opus clip made the same way
(:func:`encode_voice_clip`, :class:`AudioClipTrack`).

The picture is ``loadtest.media_bot.PatternVideoTrack``'s (bars moving one pixel per frame; 640x480)
with a band of low-amplitude random noise (rows 216-263, values 0-31, a fixed seed), standing in for
a camera's sensor noise: the bars alone compress to about 350 kbit/s, far below what a camera
sends; with the band, the encoder spends its whole budget. Encoding is aiortc 1.16's own VP8
encoder (libvpx, real-time, CBR) at a fixed target (REMB ignored), ``--bitrate-kbps`` (1,000 by
default): about 4 RTP packets per frame, 120 per second.

:func:`encode_clip` encodes 2 x ``LOOP`` frames continuously and keeps the second half (delta
frames in steady state), plus, for each of those pictures, a keyframe from a fresh encoder.
:class:`ClipTrack` plays the deltas in a loop and sends the matching keyframe first and whenever
the SFU asks (PLI/FIR), as a live encoder forcing its next frame to be a keyframe would. The loop
and the inserted keyframes do not match the deltas' references exactly: a decoder (MediaRelay's)
shows drift, but every frame decodes.
"""

from __future__ import annotations

import array
import asyncio
import base64
import fractions
import json
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
from aiortc.codecs.vpx import Vp8Encoder, VpxPayloadDescriptor
from aiortc.mediastreams import MediaStreamTrack

from bench.audio_continuity import opus_has_lbrr
from loadtest.media_bot import PatternVideoTrack

#: Frames in the loop: the bars' period (they move one pixel per frame, repeating every 128).
LOOP = 128
CLOCK_RATE = 90_000
FPS = 30
NOISE_ROWS = (216, 264)
NOISE_MAX = 32
TIME_BASE = fractions.Fraction(1, CLOCK_RATE)


class FixedBitrateVp8Encoder(Vp8Encoder):
    """aiortc's VP8 encoder at a fixed target bitrate (REMB would set ``target_bitrate``)."""

    def __init__(self, bitrate: int) -> None:
        super().__init__()
        self._fixed = bitrate
        self._Vp8Encoder__target_bitrate = bitrate  # its bufsize option reads the private name

    @property
    def target_bitrate(self) -> int:
        return self._fixed

    @target_bitrate.setter
    def target_bitrate(self, bitrate: int) -> None:
        pass


class NoisyPattern(PatternVideoTrack):
    """PatternVideoTrack's pictures with the noise band, as fast as asked (not paced)."""

    def __init__(self, width: int, height: int, seed: int = 1) -> None:
        super().__init__(width, height)
        self._pts = -int(CLOCK_RATE / FPS)
        self._rng = random.Random(seed)
        self._scale = bytes(b * NOISE_MAX // 256 for b in range(256))

    async def next_timestamp(self) -> tuple[int, fractions.Fraction]:
        self._pts += int(CLOCK_RATE / FPS)
        return self._pts, TIME_BASE

    async def recv(self) -> av.VideoFrame:
        frame = await super().recv()
        luma = bytearray(bytes(frame.planes[0]))
        start, stop = (r * self.width for r in NOISE_ROWS)
        luma[start:stop] = self._rng.randbytes(stop - start).translate(self._scale)
        frame.planes[0].update(bytes(luma))
        return frame


def _frame_bytes(encoder: Vp8Encoder, frame: av.VideoFrame) -> bytes:
    """One encoded VP8 frame: aiortc's RTP payloads without their payload descriptors."""
    payloads, _ = encoder.encode(frame)
    return b"".join(VpxPayloadDescriptor.parse(p)[1] for p in payloads)


@dataclass
class Clip:
    """``deltas[i]``: the i-th frame of the loop; ``keys[i]``: the same picture as a keyframe."""

    width: int
    height: int
    bitrate: int
    deltas: list[bytes]
    keys: list[bytes]

    def kbps(self) -> float:
        return sum(map(len, self.deltas)) * 8 * FPS / len(self.deltas) / 1000

    def save(self, path: Path) -> None:
        data: dict[str, Any] = {
            "width": self.width,
            "height": self.height,
            "bitrate": self.bitrate,
            "deltas": [base64.b64encode(d).decode() for d in self.deltas],
            "keys": [base64.b64encode(k).decode() for k in self.keys],
        }
        path.write_text(json.dumps(data))

    @classmethod
    def load(cls, path: Path) -> Clip:
        data = json.loads(path.read_text())
        return cls(
            data["width"],
            data["height"],
            data["bitrate"],
            [base64.b64decode(d) for d in data["deltas"]],
            [base64.b64decode(k) for k in data["keys"]],
        )


async def encode_clip(width: int, height: int, bitrate: int) -> Clip:
    """Encode the loop (about 2 s of CPU on the test machine).

    Raises:
        RuntimeError: a loop frame came out as a keyframe, or a keyframe as a delta frame.
    """
    source = NoisyPattern(width, height)
    frames = [await source.recv() for _ in range(2 * LOOP)]
    encoder = FixedBitrateVp8Encoder(bitrate)
    stream = [_frame_bytes(encoder, f) for f in frames]
    deltas = stream[LOOP:]
    keys = [_frame_bytes(FixedBitrateVp8Encoder(bitrate), f) for f in frames[LOOP:]]
    if any(is_keyframe(d) for d in deltas) or not all(map(is_keyframe, keys)):
        raise RuntimeError("the VP8 clip is not deltas + keyframes as expected")
    return Clip(width, height, bitrate, deltas, keys)


def is_keyframe(frame: bytes) -> bool:
    """VP8 frame tag bit 0 is 0 on a key frame (RFC 6386 section 9.1)."""
    return bool(frame) and frame[0] & 0x01 == 0


class ClipTrack(MediaStreamTrack):
    """Plays a :class:`Clip` at 30 fps as encoded ``av.Packet`` s (aiortc's sender only packs
    them); a keyframe first and after each :meth:`request_keyframe`."""

    kind = "video"

    def __init__(self, clip: Clip) -> None:
        super().__init__()
        self.clip = clip
        self.sent = 0
        self.keyframes = 0
        self._want_keyframe = True
        self._start: float | None = None
        self._pts = 0

    def request_keyframe(self) -> None:
        """The SFU sent PLI/FIR: the next frame is a keyframe."""
        self._want_keyframe = True

    async def recv(self) -> av.Packet:
        if self._start is None:
            self._start = time.monotonic()
        else:
            self._pts += CLOCK_RATE // FPS
            wait = self._start + self._pts / CLOCK_RATE - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        i = self.sent % len(self.clip.deltas)
        if self._want_keyframe:
            self._want_keyframe = False
            self.keyframes += 1
            data = self.clip.keys[i]
        else:
            data = self.clip.deltas[i]
        packet = av.Packet(data)
        packet.pts = self._pts
        packet.time_base = TIME_BASE
        self.sent += 1
        return packet


# -- the microphone: Opus --------------------------------------------------------------------------

#: Opus in RTP: a 48 kHz clock (RFC 7587 section 4.1); 20 ms frames of 960 samples, mono.
AUDIO_RATE = 48_000
AUDIO_FRAME = 960
AUDIO_TIME_BASE = fractions.Fraction(1, AUDIO_RATE)
#: Frames in the audio loop (5 s).
AUDIO_LOOP = 250
#: Vowel formants (Hz): the synthetic voice moves to the next every 200 ms.
_VOWELS = ((730, 1090, 2440), (270, 2290, 3010), (530, 1840, 2480), (300, 870, 2240))


def voice_pcm(frames: int, seed: int = 1) -> bytes:
    """A synthetic voice that never pauses: a glottal pulse train (pitch 100-180 Hz, wavering)
    through three formant resonators, cycling vowels, with a 4 Hz syllable envelope; s16 mono,
    48 kHz. libopus codes it as speech (SILK or hybrid), where in-band FEC lives; a pure tone
    is coded as music (CELT), which has none."""
    rng = random.Random(seed)
    out = array.array("h")
    state = [[0.0, 0.0] for _ in range(3)]
    phase = 0.0
    for i in range(frames * AUDIO_FRAME):
        t = i / AUDIO_RATE
        f0 = 140 + 30 * math.sin(2 * math.pi * 0.7 * t) + 10 * math.sin(2 * math.pi * 5.3 * t)
        phase += f0 / AUDIO_RATE
        x = 0.01 * (rng.random() - 0.5)
        if phase >= 1.0:
            phase -= 1.0
            x += 1.0
        sample = 0.0
        for k, formant in enumerate(_VOWELS[int(t / 0.2) % len(_VOWELS)]):
            r = math.exp(-math.pi * (80 + 40 * k) / AUDIO_RATE)
            y = x + 2 * r * math.cos(2 * math.pi * formant / AUDIO_RATE) * state[k][0]
            y -= r * r * state[k][1]
            state[k] = [y, state[k][0]]
            sample += y / (k + 1)
        envelope = 0.6 + 0.4 * math.sin(2 * math.pi * 4 * t) ** 2
        out.append(max(-32767, min(32767, int(sample * envelope * 150))))
    return out.tobytes()


@dataclass
class AudioClip:
    """Opus packets, one per 20 ms frame, played in a loop; how they were encoded."""

    bitrate: int
    fec_loss_pct: int
    frames: list[bytes]

    def kbps(self) -> float:
        """Opus payload bit rate (RTP, SRTP, UDP and IP headers add about 20 kbit/s)."""
        return sum(map(len, self.frames)) * 8 * AUDIO_RATE / AUDIO_FRAME / len(self.frames) / 1000

    def describe(self) -> dict[str, Any]:
        """Its bit rate, the share of packets carrying in-band FEC (LBRR), its Opus modes."""
        modes = {"silk": 0, "hybrid": 0, "celt": 0}
        for frame in self.frames:
            config = frame[0] >> 3  # RFC 6716 section 3.1
            modes["silk" if config < 12 else "hybrid" if config < 16 else "celt"] += 1
        return {
            "kbps": round(self.kbps(), 1),
            "fec_loss_pct": self.fec_loss_pct,
            "lbrr_share": round(sum(map(opus_has_lbrr, self.frames)) / len(self.frames), 3),
            "modes": modes,
        }

    def save(self, path: Path) -> None:
        data = {
            "bitrate": self.bitrate,
            "fec_loss_pct": self.fec_loss_pct,
            "frames": [base64.b64encode(f).decode() for f in self.frames],
        }
        path.write_text(json.dumps(data))

    @classmethod
    def load(cls, path: Path) -> AudioClip:
        data = json.loads(path.read_text())
        return cls(
            data["bitrate"], data["fec_loss_pct"], [base64.b64decode(f) for f in data["frames"]]
        )


def encode_voice_clip(bitrate: int, fec_loss_pct: int, loop: int = AUDIO_LOOP) -> AudioClip:
    """Encode :func:`voice_pcm` with libopus (PyAV): ``application=voip``, 20 ms frames, VBR at
    ``bitrate`` bit/s, in-band FEC on and sized for ``fec_loss_pct`` % loss (libopus adds LBRR
    only when told to expect loss: a WebRTC encoder is told by its own uplink's receiver
    reports). ``loop`` frames are kept; the first ones (the encoder's start) are left out."""
    codec = av.CodecContext.create("libopus", "w")
    codec.bit_rate = bitrate
    codec.format = "s16"
    codec.layout = "mono"
    codec.sample_rate = AUDIO_RATE
    codec.time_base = AUDIO_TIME_BASE
    codec.options = {
        "application": "voip",
        "frame_duration": "20",
        "vbr": "on",
        "fec": "1",
        "packet_loss": str(fec_loss_pct),
    }
    warmup = 25
    pcm = voice_pcm(loop + warmup)
    frame_bytes = AUDIO_FRAME * 2
    packets: list[bytes] = []
    for k in range(loop + warmup):
        frame = av.AudioFrame(format="s16", layout="mono", samples=AUDIO_FRAME)
        frame.planes[0].update(pcm[k * frame_bytes : (k + 1) * frame_bytes])
        frame.sample_rate = AUDIO_RATE
        frame.pts = k * AUDIO_FRAME
        frame.time_base = AUDIO_TIME_BASE
        packets += [bytes(p) for p in codec.encode(frame)]
    return AudioClip(bitrate, fec_loss_pct, packets[warmup:])


class AudioClipTrack(MediaStreamTrack):
    """Plays an :class:`AudioClip` in real time as encoded ``av.Packet`` s, one per 20 ms (the
    sender's Opus ``pack`` takes them as they are)."""

    kind = "audio"

    def __init__(self, clip: AudioClip) -> None:
        super().__init__()
        self.clip = clip
        self.sent = 0
        self._start: float | None = None

    async def recv(self) -> av.Packet:
        pts = self.sent * AUDIO_FRAME
        if self._start is None:
            self._start = time.monotonic()
        else:
            wait = self._start + pts / AUDIO_RATE - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        packet = av.Packet(self.clip.frames[self.sent % len(self.clip.frames)])
        packet.pts = pts
        packet.time_base = AUDIO_TIME_BASE
        self.sent += 1
        return packet
