"""The detector's metrics: frames by outcome, detector time per batch, and the backlog per tenant at scrape time."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

# What became of each decoded frame: detected (went through the detector), gated_out (no motion, no moving track:
# analysed without the detector) or dropped (replaced by a newer frame while waiting for a detector slot).
FRAMES = Counter("vigie_inference_frames_total", "Decoded frames taken from the cameras, by what became of them",
                 ["outcome"])
DETECTED_FRAMES, GATED_OUT_FRAMES, DROPPED_FRAMES = (FRAMES.labels(outcome)
                                                    for outcome in ("detected", "gated_out", "dropped"))
BATCH_SECONDS = Histogram("vigie_inference_batch_seconds", "Detector time for one batch of frames",
                          buckets=(0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0))


class QueueDepthCollector(Collector):
    """vigie_inference_queue_depth{tenant_id}: frames waiting for a detector slot, per tenant."""

    def __init__(self, depth_by_tenant: Callable[[], dict[uuid.UUID, int]]) -> None:
        self._depth_by_tenant = depth_by_tenant

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("vigie_inference_queue_depth", "Frames waiting for a detector slot, per tenant",
                                   labels=["tenant_id"])
        for tenant_id, depth in sorted(self._depth_by_tenant().items(), key=lambda item: str(item[0])):
            family.add_metric([str(tenant_id)], depth)
        yield family
