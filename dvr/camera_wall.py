"""The camera wall use case: every camera in the caller's scope by commune and site, with its condition read from
what the recorders and the detector already report (recording health, gaps, open tamper and offline alerts)."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

from core.db import Database
from core.tenancy import Principal, Role, require_role
from dvr.model import CameraCondition, CameraWall, WallCamera, WallCommune, WallSite
from dvr.rules import camera_condition
from dvr.settings import DvrSettings
from dvr.wall_repository import WallRepository

# Who watches the cameras' health: the CSU's staff, auditors, and a tenant's admins for their own cameras.
WALL_ROLES = frozenset({Role.OPERATOR, Role.SUPERVISOR, Role.DEPARTMENT_ADMIN, Role.AUDITOR, Role.TENANT_ADMIN})
RECENT_GAPS = timedelta(hours=1)
# H.265 in the recorder's names (dvr.uploader): the live view needs a transcode for it.
_BROWSER_UNPLAYABLE = frozenset({"hevc"})


class CameraWallService:
    def __init__(self, db: Database, settings: DvrSettings, *, repo: WallRepository | None = None) -> None:
        self._db = db
        self._settings = settings
        self._repo = repo or WallRepository()

    async def wall(self, principal: Principal, *, tenant_id: uuid.UUID | None = None,
                   insee_code: str | None = None,
                   conditions: frozenset[CameraCondition] | None = None) -> CameraWall:
        require_role(principal, WALL_ROLES, "see the camera wall")
        now = datetime.now(UTC)
        since = now - RECENT_GAPS
        async with self._db.transaction(principal, readonly=True) as conn:
            rows = await self._repo.cameras(conn, gaps_since=since, tenant_id=tenant_id, insee_code=insee_code)
        # A segment lasts segment_s and reaches the index some seconds after it ends: three segments' time without
        # one means the recorder stopped writing.
        stale_after_s = 3 * self._settings.segment_s + 10
        communes: dict[str, WallCommune] = {}
        sites: dict[tuple[str, uuid.UUID], WallSite] = {}
        counts: Counter[str] = Counter()
        for r in rows:
            condition = camera_condition(
                configured=r["configured_status"], recording_state=r["recording_state"],
                recording_since=r["recording_since"],
                last_frame_at=r["last_frame_at"], recent_gaps=r["recent_gaps"], tamper=r["tamper"],
                offline_alert=r["offline_alert"], now=now, stale_after_s=stale_after_s)
            if conditions and condition not in conditions:
                continue
            counts[condition.value] += 1
            commune = communes.setdefault(r["insee_code"], WallCommune(insee_code=r["insee_code"],
                                                                       name=r["commune_name"], sites=[]))
            site = sites.get((r["insee_code"], r["site_id"]))
            if site is None:
                site = WallSite(site_id=r["site_id"], name=r["site_name"], kind=r["site_kind"], cameras=[])
                sites[(r["insee_code"], r["site_id"])] = site
                commune.sites.append(site)
            site.cameras.append(WallCamera(
                camera_id=r["camera_id"], tenant_id=r["tenant_id"], tenant_name=r["tenant_name"],
                name=r["name"], condition=condition,
                configured_status=r["configured_status"], recording_state=r["recording_state"],
                recording_since=r["recording_since"], last_frame_at=r["last_frame_at"],
                recording_detail=r["recording_detail"], codec=r["codec"],
                live_needs_transcode=r["codec"] in _BROWSER_UNPLAYABLE, live_transcode=r["live_transcode"],
                recent_gaps=r["recent_gaps"], last_gap_end=r["last_gap_end"], tamper=r["tamper"],
                offline_alert=r["offline_alert"]))
        return CameraWall(generated_at=now, gaps_since=since,
                          counts={c.value: counts.get(c.value, 0) for c in CameraCondition},
                          communes=list(communes.values()))
