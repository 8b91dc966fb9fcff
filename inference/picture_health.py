"""The detector's view of a camera's health, from the sub stream it decodes anyway: frozen (frames identical, or a
connection that stays open while nothing comes), tampered (covered, blurred, turned away), degraded (garbled frames,
or fewer frames than the camera's profile), offline. Pure: fed with frames and stream changes, no I/O."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from statistics import median

from inference.analytics import tamper_reasons
from inference.model import FrameStats

# A frame differing from the previous one by less than this (mean absolute luma levels) is the same picture: sensor
# noise alone moves a live camera's frames by about a level, a frozen encoder's by nothing.
STILL_DELTA = 0.05
# Under this share of the profile's frame rate, the stream is degraded; so it is when this share of what arrives is
# garbled (packets the decoder rejects, frames it conceals): a sound stream has none.
FPS_FLOOR = 0.5
GARBLED_SHARE = 0.1
WINDOW_S = 5.0
# Histogram distance (total variation, 0 to 1) from the learnt scene beyond which the camera looks elsewhere.
TURNED_AWAY = 0.5


@dataclass
class PictureHealthMonitor:
    """One camera's picture, judged over `hold_s` so a passing shadow or a dropped frame changes nothing."""

    hold_s: float = 20.0
    expected_fps: float | None = None
    # A still picture waits longer (a static scene under a denoising encoder can repeat itself for a while);
    # None: hold_s.
    frozen_hold_s: float | None = None
    state: str | None = None
    detail: str | None = None
    _candidate: tuple[str, str | None] | None = None
    _candidate_since: float = 0.0
    _stream_lost: bool = False
    _sharpness: deque[float] = field(default_factory=lambda: deque(maxlen=120))
    _reference: list[float] | None = None
    _counts: deque[tuple[float, int, int]] = field(default_factory=lambda: deque(maxlen=256))

    def on_stream_lost(self, reason: str) -> tuple[str, str | None] | None:
        """The reader gave up on the stream: why says what it means for the picture. The new state when it changed."""
        self._stream_lost = True
        self._counts.clear()
        lowered = reason.lower()
        if "stalled" in lowered:
            # The camera keeps the connection but sends nothing: its picture is frozen (a hung camera).
            return self._set("frozen", "image figée : la caméra ne transmet plus d'images")
        if "corrupt" in lowered or "undecodable" in lowered:
            return self._set("degraded", "flux dégradé : images indécodables")
        return self._set("offline", f"flux perdu : {reason}"[:500])

    def on_frame(self, t: float, stats: FrameStats, decoded_total: int,
                 garbled_total: int = 0) -> tuple[str, str | None] | None:
        """A sampled frame at monotonic `t`, with the reader's counts of decoded and garbled frames (or packets);
        the new state when it changed (a condition must hold for `hold_s` first)."""
        self._counts.append((t, decoded_total, garbled_total))
        wanted = self._verdict(stats)
        if (self.state is None or self._stream_lost) and wanted[0] == "online":
            # A picture that is fine at first, or when the stream comes back, needs no wait.
            self._stream_lost, self._candidate = False, None
            return self._set(*wanted)
        self._stream_lost = False
        if wanted[0] == self.state:
            self._candidate = None
            return None
        if self._candidate is None or self._candidate[0] != wanted[0]:
            self._candidate, self._candidate_since = wanted, t
            return None
        hold = self.frozen_hold_s if wanted[0] == "frozen" and self.frozen_hold_s is not None else self.hold_s
        if t - self._candidate_since >= hold:
            self._candidate = None
            return self._set(*wanted)
        return None

    def _verdict(self, stats: FrameStats) -> tuple[str, str | None]:
        baseline = median(self._sharpness) if len(self._sharpness) >= 10 else None
        # Scene changes are judged against the learnt histogram below, not the motion gate's one-frame flag.
        reasons = [r for r in tamper_reasons(stats, baseline) if r != "scene change"]
        distance = self._distance(stats.histogram)
        if distance is not None and distance > TURNED_AWAY and "blackout" not in reasons:
            reasons.append("scene changed (turned away)")
        if reasons:
            return "tampered", "caméra masquée, floutée ou détournée : " + ", ".join(reasons)
        self._learn(stats)
        fps, garbled = self._rates()
        if garbled is not None and garbled > GARBLED_SHARE:
            return "degraded", f"flux dégradé : {garbled:.0%} d'images altérées"
        if fps is not None and self.expected_fps and fps < FPS_FLOOR * self.expected_fps:
            return "degraded", f"débit d'images {fps:.1f} i/s sous le profil ({self.expected_fps:g} i/s)"
        if stats.frame_delta is not None and stats.frame_delta < STILL_DELTA:
            return "frozen", "image figée : les images ne changent plus"
        return "online", None

    def _learn(self, stats: FrameStats) -> None:
        """What a normal picture looks like: its sharpness and, slowly, its luma histogram."""
        self._sharpness.append(stats.sharpness)
        if stats.histogram is None:
            return
        if self._reference is None or len(self._reference) != len(stats.histogram):
            self._reference = list(stats.histogram)
        else:
            self._reference = [0.98 * r + 0.02 * h for r, h in zip(self._reference, stats.histogram, strict=True)]

    def _distance(self, histogram: tuple[float, ...] | None) -> float | None:
        if histogram is None or self._reference is None or len(histogram) != len(self._reference):
            return None
        return 0.5 * sum(abs(h - r) for h, r in zip(histogram, self._reference, strict=True))

    def _rates(self) -> tuple[float | None, float | None]:
        """Decoded frames per second and the garbled share over the last WINDOW_S (two seconds at least)."""
        while len(self._counts) > 2 and self._counts[-1][0] - self._counts[1][0] >= WINDOW_S:
            self._counts.popleft()
        if len(self._counts) < 2:
            return None, None
        (t0, d0, g0), (t1, d1, g1) = self._counts[0], self._counts[-1]
        if t1 - t0 < 2.0:
            return None, None
        decoded, garbled = d1 - d0, g1 - g0
        return decoded / (t1 - t0), (garbled / decoded if decoded > 0 else None)

    def _set(self, state: str, detail: str | None) -> tuple[str, str | None] | None:
        if state == self.state:
            return None
        self.state, self.detail = state, detail
        return state, detail
