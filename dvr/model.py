"""DVR data: camera recording targets, segments, gaps, clips, requisitions, exports (its events: dvr/events.py)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import NewType, Protocol

import msgspec

CameraId = NewType("CameraId", uuid.UUID)
TenantId = NewType("TenantId", uuid.UUID)


class Tier(StrEnum):
    """Content-aware retention tiers: continuous footage and event clips may be kept for different periods."""

    CONTINUOUS = "continuous"
    EVENT = "event"


class GapCause(StrEnum):
    CAMERA_UNREACHABLE = "camera_unreachable"
    STREAM_STALLED = "stream_stalled"
    RECORDER_FAILOVER = "recorder_failover"
    SPOOL_FULL = "spool_full"
    CODEC_CHANGED = "codec_changed"
    RECORDER_STOPPED = "recorder_stopped"
    # The camera's privacy masks changed: the recorder closed its run to burn the new ones in from the next segment.
    MASK_CHANGED = "mask_changed"


class LegalFrame(StrEnum):
    """The judicial frames that allow keeping images beyond the retention period (CSI L252-5)."""

    FLAGRANCE = "flagrance"
    ENQUETE_PRELIMINAIRE = "enquete_preliminaire"
    INFORMATION_JUDICIAIRE = "information_judiciaire"


@dataclass(frozen=True)
class CameraTarget:
    """A camera the recorder must record, with its stream URL (credentials inside, never logged)."""

    tenant_id: uuid.UUID
    camera_id: uuid.UUID
    name: str
    url: str
    # Privacy-mask polygons (normalised) burnt into every frame, and the camera's mask version they come from.
    masks: tuple[tuple[tuple[float, float], ...], ...] = ()
    mask_version: int = 0
    # The camera's profile: under half of this bitrate for a few segments in a row, the main stream is degraded.
    expected_bitrate_kbps: int | None = None


@dataclass(frozen=True)
class RetentionInputs:
    """What the law and the tenant say about one camera's retention (see rules.effective_retention)."""

    tenant_days: int
    authorisation_max_days: int | None
    authorisation_min_days: int | None
    tier_days: int | None


class SegmentFacts(Protocol):
    """What the recording index keeps of a segment, whether it comes from the spool or back from the store."""

    @property
    def tenant_id(self) -> uuid.UUID: ...
    @property
    def camera_id(self) -> uuid.UUID: ...
    @property
    def start_at(self) -> datetime: ...
    @property
    def end_at(self) -> datetime: ...
    @property
    def size(self) -> int: ...
    @property
    def sha256(self) -> str: ...
    @property
    def codec(self) -> str | None: ...
    @property
    def recorder_id(self) -> str: ...
    @property
    def init_size(self) -> int | None: ...
    @property
    def mask_version(self) -> int | None: ...
    @property
    def object_key(self) -> str: ...


@dataclass(frozen=True)
class SpooledSegment:
    """A finished segment on local disk with its sidecar; it stays there until the store and the index have it."""

    tenant_id: uuid.UUID
    camera_id: uuid.UUID
    path: Path
    start_at: datetime
    end_at: datetime
    size: int
    sha256: str
    codec: str | None
    recorder_id: str
    # Length of the init section (ftyp + moov) ahead of the first fragment: HLS serves it apart (dvr.hls).
    init_size: int | None = None
    # The camera's mask version burnt into this segment (None: the stream copied as the camera sent it).
    mask_version: int | None = None

    @property
    def object_key(self) -> str:
        return segment_key(self.camera_id, self.start_at)


# The metadata a segment's object carries (`ObjectStore.put_file(metadata=…)`): with its key, tenant and stored hash,
# everything its index row holds, so that the index can be rebuilt from the store after a database restore.
SEGMENT_METADATA = ("vigie-start", "vigie-end", "vigie-codec", "vigie-recorder", "vigie-init-size",
                    "vigie-mask-version")


def segment_metadata(segment: SpooledSegment) -> dict[str, str]:
    """The segment's index facts as object metadata (an empty value for an absent one)."""
    return {
        "vigie-start": segment.start_at.isoformat(), "vigie-end": segment.end_at.isoformat(),
        "vigie-codec": segment.codec or "", "vigie-recorder": segment.recorder_id,
        "vigie-init-size": "" if segment.init_size is None else str(segment.init_size),
        "vigie-mask-version": "" if segment.mask_version is None else str(segment.mask_version),
    }


def segment_key(camera_id: uuid.UUID, start_at: datetime) -> str:
    """Deterministic key (camera, start instant): a re-upload after a crash lands on the same key."""
    ms = int(start_at.timestamp() * 1000)
    return f"{Tier.CONTINUOUS.value}/{camera_id}/{start_at:%Y-%m-%d}/{ms}.mp4"


def clip_key(camera_id: uuid.UUID, clip_id: uuid.UUID) -> str:
    return f"{Tier.EVENT.value}/{camera_id}/{clip_id}.mp4"


def export_key(export_id: uuid.UUID) -> str:
    return f"exports/{export_id}.zip"


class Segment(msgspec.Struct, frozen=True, kw_only=True):
    """One row of the segment index."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    camera_id: uuid.UUID
    start_at: datetime
    end_at: datetime
    size_bytes: int
    sha256: str
    object_key: str
    version_id: str | None
    init_size: int | None = None
    mask_version: int | None = None


class Gap(msgspec.Struct, frozen=True, kw_only=True):
    tenant_id: uuid.UUID
    camera_id: uuid.UUID
    start_at: datetime
    end_at: datetime
    cause: GapCause
    detail: str | None = None


class Clip(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    tenant_id: uuid.UUID
    camera_id: uuid.UUID
    alert_id: uuid.UUID | None
    start_at: datetime
    end_at: datetime
    object_key: str
    version_id: str | None
    sha256: str
    size_bytes: int


class Requisition(msgspec.Struct, frozen=True, kw_only=True):
    """A judicial requisition (réquisition judiciaire): who asks, under which procedure, for what."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    procedure_number: str
    legal_frame: LegalFrame
    opj_name: str
    opj_service: str
    opj_contact: str | None
    camera_ids: list[uuid.UUID]
    start_at: datetime
    end_at: datetime
    received_at: datetime
    registered_by: uuid.UUID
    released_at: datetime | None = None


class PlaybackItem(msgspec.Struct, frozen=True, kw_only=True):
    """One playable piece of a playback answer: an interval and a short-lived URL."""

    start_at: datetime
    end_at: datetime
    url: str
    sha256: str


class Playback(msgspec.Struct, frozen=True, kw_only=True):
    camera_id: uuid.UUID
    items: list[PlaybackItem]
    gaps: list[Gap]
    expires_at: datetime


class HlsPlayback(msgspec.Struct, frozen=True, kw_only=True):
    """A camera's recordings over an interval as an HLS (fMP4) media playlist whose segment links are signed and
    short-lived; `gaps` are the holes in the recording, also marked in the playlist."""

    camera_id: uuid.UUID
    start_at: datetime
    end_at: datetime
    playlist: str
    segments: int
    gaps: list[Gap]
    expires_at: datetime


class RecordedSpan(msgspec.Struct, frozen=True, kw_only=True):
    start_at: datetime
    end_at: datetime


class TimelineGap(msgspec.Struct, frozen=True, kw_only=True):
    """A hole in a camera's recording; the cause when the recorder knew it (camera unreachable, stalled...)."""

    start_at: datetime
    end_at: datetime
    cause: GapCause | None = None
    detail: str | None = None


class Timeline(msgspec.Struct, frozen=True, kw_only=True):
    """What was recorded of one camera over a period: recorded spans and the gaps between them."""

    camera_id: uuid.UUID
    start_at: datetime
    end_at: datetime
    recorded: list[RecordedSpan]
    gaps: list[TimelineGap]


class CameraCondition(StrEnum):
    """A camera's state on the wall, the most urgent first: what the recorder and the detector know of it now."""

    DISABLED = "disabled"
    OFFLINE = "offline"
    TAMPER = "tamper"
    RECORDING_GAPS = "recording_gaps"
    ONLINE = "online"
    UNKNOWN = "unknown"  # no recorder has reported on it yet


class WallCamera(msgspec.Struct, frozen=True, kw_only=True):
    """One tile of the camera wall. `last_frame_at`: the end of its last recorded segment."""

    camera_id: uuid.UUID
    tenant_id: uuid.UUID
    tenant_name: str
    name: str
    condition: CameraCondition
    configured_status: str
    recording_state: str | None
    recording_since: datetime | None
    last_frame_at: datetime | None
    recording_detail: str | None
    codec: str | None
    # H.265 does not play in browsers: the live view needs the camera's transcode profile.
    live_needs_transcode: bool
    live_transcode: bool
    recent_gaps: int
    last_gap_end: datetime | None
    tamper: bool
    offline_alert: bool


class WallSite(msgspec.Struct, frozen=True, kw_only=True):
    site_id: uuid.UUID
    name: str
    kind: str
    cameras: list[WallCamera]


class WallCommune(msgspec.Struct, frozen=True, kw_only=True):
    insee_code: str
    name: str
    sites: list[WallSite]


class CameraWall(msgspec.Struct, frozen=True, kw_only=True):
    """The cameras in scope by commune and site with their condition; `counts` per condition; `gaps_since` the
    start of the window that `recent_gaps` counts."""

    generated_at: datetime
    gaps_since: datetime
    counts: dict[str, int]
    communes: list[WallCommune]


class ExportStatus(StrEnum):
    """A requested export: queued, then built by the recorders' process (python -m dvr), done or not."""

    QUEUED = "queued"
    BUILDING = "building"
    DONE = "done"
    FAILED = "failed"
    REFUSED = "refused"  # past the size cap once built: narrow the interval or the cameras


class ExportJob(msgspec.Struct, frozen=True, kw_only=True):
    """An export's progress; once done, the signed package's id, SHA-256, size and signing key."""

    id: uuid.UUID
    requisition_id: uuid.UUID
    status: ExportStatus
    requested_at: datetime
    estimated_bytes: int
    size_cap_bytes: int
    started_at: datetime | None = None
    finished_at: datetime | None = None
    export_id: uuid.UUID | None = None
    package_sha256: str | None = None
    package_bytes: int | None = None
    files: int | None = None
    signing_key_id: str | None = None
    error: str | None = None
