"""Recorder and evidence settings read from VIGIE_DVR_* environment variables."""

from __future__ import annotations

import uuid
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.settings import PROJECT_ROOT


class DvrSettings(BaseSettings):
    """Defaults follow Frigate's recording preset (10 s MP4 segments, stream copied) and the reliability notes."""

    model_config = SettingsConfigDict(env_prefix="VIGIE_DVR_", extra="ignore")

    # Prometheus metrics on their own listener (host:port, port 0: any free one); empty: not served.
    metrics_address: str = "127.0.0.1:9103"
    ffmpeg: str = "ffmpeg"
    ffprobe: str = "ffprobe"
    # Scheduling priority of the ffmpeg children relative to the recorder (0 = same): the supervisor renews
    # leases and uploads, which must not starve behind a burst of ffmpeg start-ups on a busy machine.
    ffmpeg_nice: int = 5
    segment_s: int = 10
    spool_dir: Path = PROJECT_ROOT / "var" / "dvr" / "spool"
    # Above this the uploader raises SpoolHighWater; segments are never evicted silently.
    spool_high_water_bytes: int = 20 * 1024**3
    upload_workers: int = 4
    # RTSP socket timeout: ffmpeg gives up on a silent connection after this long.
    rtsp_timeout_s: float = 5.0
    # No finished segment for this long (beyond one segment) means the stream stalled: restart ffmpeg.
    stall_after_s: float = 10.0
    # Reconnect: capped exponential backoff with full jitter, reset after a stable run.
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 4.0
    stable_after_s: float = 30.0
    # A camera with no recording for this long is reported offline.
    offline_after_s: float = 5.0
    # Two consecutive segments further apart than this leave a gap row.
    gap_tolerance_s: float = 1.5
    # Leases: a dead recorder's cameras are taken over within about lease_ttl_s + lease_poll_s.
    lease_ttl_s: float = 5.0
    lease_poll_s: float = 1.0
    # Event clips: default pre- and post-event buffers.
    clip_pre_s: float = 10.0
    clip_post_s: float = 10.0
    clip_max_s: float = 600.0
    # The durable consumer of new alerts shared by every recorder process, and how many clips one cuts at a time.
    clip_durable: str = "dvr-alert-clips"
    clip_concurrency: int = 2
    # Presigned playback URLs live this long.
    playback_url_ttl_s: int = 300
    playback_max_s: float = 4 * 3600.0
    sweep_interval_s: float = 60.0
    # Exports: the largest package built (kept under 4 GiB, so no member ever needs ZIP64), how often the builder
    # looks for requested exports, and how long a claim lives without renewal before another builder takes over.
    export_max_bytes: int = Field(default=2 * 1024**3, ge=1, le=3 * 1024**3)
    export_poll_s: float = 2.0
    export_claim_ttl_s: float = 120.0
    export_max_attempts: int = 3
    # The journal anchoring job (a department job this process runs): one signed checkpoint at most this often.
    journal_anchor_interval_s: float = 3600.0
    # The journal retention job (lines past three years removed, the cut anchored): one leader runs it this often.
    journal_retention_interval_s: float = 86400.0
    # The camera health watch (re-evaluation, events, maintenance tickets): one leader runs it this often.
    health_watch_interval_s: float = 30.0
    # Announce every stored segment on NATS (dvr.<tenant>.SegmentRecorded) for an integration that wants it: nothing
    # in the platform consumes it, and each announcement is a JetStream round trip per segment.
    publish_segments: bool = False
    # A masked camera's main stream is re-encoded with its privacy masks burnt in (docs/masks.md): libx264 at this
    # preset and thread count, at about the bitrate the camera sends (read from its last unmasked segment; this
    # default otherwise), with a keyframe wherever the camera put one (same GOP). "h264_nvenc" on a GPU node.
    mask_encoder: str = "libx264"
    mask_preset: str = "ultrafast"
    mask_threads: int = Field(default=1, ge=0, le=64)
    mask_default_kbps: int = Field(default=4000, ge=100, le=100_000)
    # Shard the fleet by tenant (several dvr deployments); empty records every tenant's cameras.
    tenant_ids: list[uuid.UUID] = Field(default_factory=list)
