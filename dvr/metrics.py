"""The recorder's gauges read at scrape time: cameras recording and offline, spool bytes, upload backlog and lag."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from dvr.fleet import FleetRecorder
from dvr.uploader import SegmentUploader


class RecorderCollector(Collector):
    """One process's recording state, computed when Prometheus scrapes (the loop keeps no extra bookkeeping)."""

    def __init__(self, fleet: FleetRecorder, uploader: SegmentUploader) -> None:
        self._fleet, self._uploader = fleet, uploader

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        recorders = [recorder for recorder, _task in list(self._fleet.recorders.values())]
        offline = sum(1 for recorder in recorders if recorder.offline_since is not None)
        yield GaugeMetricFamily("vigie_dvr_cameras_recording", "Cameras this recorder holds a lease on",
                                value=len(recorders))
        yield GaugeMetricFamily("vigie_dvr_cameras_offline", "Leased cameras reported offline (no segment)",
                                value=offline)
        yield GaugeMetricFamily("vigie_dvr_spool_bytes", "Segments on local disk not yet uploaded, in bytes",
                                value=self._uploader.spooled_bytes)
        yield GaugeMetricFamily("vigie_dvr_upload_backlog_segments", "Segments waiting for upload",
                                value=self._uploader.backlog)
        oldest = self._uploader.oldest_pending_end()
        age = 0.0 if oldest is None else max((datetime.now(UTC) - oldest).total_seconds(), 0.0)
        yield GaugeMetricFamily("vigie_dvr_oldest_pending_segment_seconds",
                                "Age of the oldest segment waiting for upload (0: none waits)", value=age)
        yield CounterMetricFamily("vigie_dvr_segments_uploaded", "Segments uploaded and indexed",
                                  value=self._uploader.uploaded)
        yield CounterMetricFamily("vigie_dvr_upload_failures", "Upload attempts that failed (retried)",
                                  value=self._uploader.failures)
