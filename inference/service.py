"""Use cases of detection: the API's settings (zones and lines, rules gated by their legal basis, plans, metering)
and the worker's view of them (each camera's configuration, lapsed rules switched off, usage recorded).

`DetectionService` holds each API use case's role check, transaction and journal line; the operations below it take
a connection the caller opened, so row-level security decides what exists: a foreign tenant's camera, zone or rule
is NotFound, exactly like a missing one. The demo seed composes the same operations in its own transactions; the
worker's operations run on a department-role connection (inference.worker).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import asyncpg
import msgspec

from core.crypto import CAMERA_CREDENTIALS, SecretBox
from core.db import Database
from core.errors import Conflict, InvalidInput, NotFound, Unavailable
from core.ids import new_id
from core.tenancy import DEPARTMENT_ADMINS, STAFF_READERS, Principal, Role, require_role
from inference.errors import InvalidRule
from inference.model import (
    CameraConfig,
    LegalBasis,
    Rule,
    RuleInput,
    RuleOption,
    RuleParams,
    RuleType,
    UsageDay,
    Zone,
    ZoneInput,
)
from inference.onnx_detector import read_labels
from inference.repository import DetectionRepository, _json
from inference.rules import check_rule, legal_basis_valid, rule_option, validate_zone
from journal.service import JournalService

# Who draws zones and enables rules: the tenant's admins and the CSU's operators (CSI: audited).
DETECTION_EDITORS = frozenset({Role.DEPARTMENT_ADMIN, Role.SUPERVISOR, Role.OPERATOR, Role.TENANT_ADMIN})
USAGE_READERS = frozenset({Role.DEPARTMENT_ADMIN, Role.TENANT_ADMIN, Role.AUDITOR})
_repo = DetectionRepository()


class ModelLabels:
    """The classes the installed detector knows, read from its label map once; until the model is installed
    (`make detector-model`), a use case that needs them answers Unavailable, and the next one looks again."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._labels: frozenset[str] | None = None
        self._load()

    def _load(self) -> None:
        if self._path.is_file():
            self._labels = frozenset(read_labels(self._path))

    def get(self) -> frozenset[str]:
        if self._labels is None:
            self._load()
        if self._labels is None:
            raise Unavailable("the detection model is not installed on this platform (make detector-model)")
        return self._labels


def _today() -> date:
    return datetime.now(UTC).date()


@dataclass
class DetectionService:
    """The API's detection use cases: role check, one transaction in the principal's scope, the journal line."""

    db: Database
    labels: ModelLabels
    journal: JournalService = field(default_factory=JournalService)

    async def list_zones(self, principal: Principal, camera_id: uuid.UUID) -> list[Zone]:
        require_role(principal, STAFF_READERS, "read detection zones")
        async with self.db.transaction(principal, readonly=True) as conn:
            return await list_zones(conn, camera_id)

    async def create_zone(self, principal: Principal, camera_id: uuid.UUID, data: ZoneInput) -> Zone:
        require_role(principal, DETECTION_EDITORS, "draw detection zones")
        async with self.db.transaction(principal) as conn:
            zone = await create_zone(conn, camera_id, data)
            await self.journal.note(conn, principal, "detection.zone.create", ("zone", zone.id),
                                    tenant_id=zone.tenant_id, camera_id=camera_id, name=zone.name, kind=zone.kind)
        return zone

    async def update_zone(self, principal: Principal, zone_id: uuid.UUID, data: ZoneInput) -> Zone:
        require_role(principal, DETECTION_EDITORS, "redraw detection zones")
        async with self.db.transaction(principal) as conn:
            zone = await update_zone(conn, zone_id, data)
            await self.journal.note(conn, principal, "detection.zone.update", ("zone", zone.id),
                                    tenant_id=zone.tenant_id, camera_id=zone.camera_id, name=zone.name)
        return zone

    async def delete_zone(self, principal: Principal, zone_id: uuid.UUID) -> None:
        require_role(principal, DETECTION_EDITORS, "delete detection zones")
        async with self.db.transaction(principal) as conn:
            zone = await get_zone(conn, zone_id)
            await delete_zone(conn, zone_id)
            await self.journal.note(conn, principal, "detection.zone.delete", ("zone", zone_id),
                                    tenant_id=zone.tenant_id, camera_id=zone.camera_id, name=zone.name)

    async def list_rules(self, principal: Principal, camera_id: uuid.UUID) -> list[Rule]:
        require_role(principal, STAFF_READERS, "read detection rules")
        async with self.db.transaction(principal, readonly=True) as conn:
            return await list_rules(conn, camera_id)

    async def create_rule(self, principal: Principal, camera_id: uuid.UUID, data: RuleInput) -> Rule:
        require_role(principal, DETECTION_EDITORS, "enable analytics")
        async with self.db.transaction(principal) as conn:
            await list_rules(conn, camera_id)  # a camera out of scope answers 404 before anything else
            rule = await create_rule(conn, camera_id, data, today=_today(), model_labels=self.labels.get())
            await self.journal.note(conn, principal, "detection.rule.create", ("rule", rule.id),
                                    tenant_id=rule.tenant_id, camera_id=camera_id,
                                    rule_type=rule.rule_type.value, enabled=rule.enabled)
        return rule

    async def update_rule(self, principal: Principal, rule_id: uuid.UUID, data: RuleInput) -> Rule:
        require_role(principal, DETECTION_EDITORS, "change analytics")
        async with self.db.transaction(principal) as conn:
            await get_rule(conn, rule_id)  # a rule out of scope answers 404 before anything else
            rule = await update_rule(conn, rule_id, data, today=_today(), model_labels=self.labels.get())
            await self.journal.note(conn, principal, "detection.rule.update", ("rule", rule.id),
                                    tenant_id=rule.tenant_id, camera_id=rule.camera_id,
                                    rule_type=rule.rule_type.value, enabled=rule.enabled)
        return rule

    async def delete_rule(self, principal: Principal, rule_id: uuid.UUID) -> None:
        require_role(principal, DETECTION_EDITORS, "remove analytics")
        async with self.db.transaction(principal) as conn:
            rule = await get_rule(conn, rule_id)
            await delete_rule(conn, rule_id)
            await self.journal.note(conn, principal, "detection.rule.delete", ("rule", rule_id),
                                    tenant_id=rule.tenant_id, camera_id=rule.camera_id,
                                    rule_type=rule.rule_type.value)

    async def rule_options(self, principal: Principal, camera_id: uuid.UUID) -> list[RuleOption]:
        """Every analytic the platform offers and whether it may be enabled on the camera today, with the reason
        when not (no legal basis on the authorisation, no model class for it): the rules editor greys those out."""
        require_role(principal, STAFF_READERS, "read detection rules")
        async with self.db.transaction(principal, readonly=True) as conn:
            await _camera_tenant(conn, camera_id)
            bases = _bases(await _repo.legal_bases(conn, [camera_id]))
        try:
            labels: frozenset[str] | None = self.labels.get()
        except Unavailable:
            labels = None
        return [rule_option(kind, bases, _today(), labels) for kind in RuleType]

    async def detector_usage(self, principal: Principal, tenant_id: uuid.UUID, since: date,
                             until: date) -> list[UsageDay]:
        require_role(principal, USAGE_READERS, "read detector usage")
        if until < since:
            raise InvalidInput("until must not be before since", field="until")
        if not principal.scope.includes(tenant_id):
            raise NotFound("no such tenant")
        async with self.db.transaction(principal, readonly=True) as conn:
            return await detector_usage(conn, tenant_id, since, until)

    async def set_plan(self, principal: Principal, tenant_id: uuid.UUID, plan: str) -> None:
        require_role(principal, DEPARTMENT_ADMINS, "set detection plans")
        if not principal.scope.includes(tenant_id):
            raise NotFound("no such tenant")
        async with self.db.transaction(principal) as conn:
            await set_detection_plan(conn, tenant_id, plan)
            await self.journal.note(conn, principal, "detection.plan.set", ("tenant", tenant_id),
                                    tenant_id=tenant_id, plan=plan)


# Operations on a connection the caller scoped ---------------------------------------------------------

def _zone(row: asyncpg.Record) -> Zone:
    return Zone(id=row["id"], tenant_id=row["tenant_id"], camera_id=row["camera_id"], name=row["name"],
                kind=row["kind"], points=tuple((float(x), float(y)) for x, y in _json(row, "points")))


def _params(raw: dict[str, Any]) -> RuleParams:
    try:
        return msgspec.convert(raw, RuleParams)
    except msgspec.ValidationError as exc:
        raise InvalidRule(f"invalid rule parameters: {exc}", field="params") from None


def _rule(row: asyncpg.Record) -> Rule:
    return Rule(id=row["id"], tenant_id=row["tenant_id"], camera_id=row["camera_id"], zone_id=row["zone_id"],
                rule_type=RuleType(row["rule_type"]), params=_params(_json(row, "params")),
                enabled=row["enabled"], disabled_reason=row["disabled_reason"])


def _bases(rows: list[asyncpg.Record]) -> list[LegalBasis]:
    return [LegalBasis(event_type=r["event_type"], valid_from=r["valid_from"], valid_until=r["valid_until"])
            for r in rows]


async def _camera_tenant(conn: asyncpg.Connection, camera_id: uuid.UUID) -> uuid.UUID:
    tenant = await _repo.camera_tenant(conn, camera_id)
    if tenant is None:
        raise NotFound("no such camera")
    return tenant


# Zones ------------------------------------------------------------------------------------------------

async def create_zone(conn: asyncpg.Connection, camera_id: uuid.UUID, data: ZoneInput) -> Zone:
    """Draw a zone or a line on a camera; refuses self-intersecting polygons and points outside the frame."""
    tenant = await _camera_tenant(conn, camera_id)
    points = validate_zone(data.kind, data.points)
    try:
        row = await _repo.insert_zone(conn, zone_id=new_id(), tenant_id=tenant, camera_id=camera_id,
                                      name=data.name, kind=data.kind, points=points)
    except asyncpg.UniqueViolationError:
        raise Conflict(f"camera already has a zone named {data.name!r}") from None
    return _zone(row)


async def get_zone(conn: asyncpg.Connection, zone_id: uuid.UUID) -> Zone:
    row = await _repo.zone(conn, zone_id)
    if row is None:
        raise NotFound("no such zone")
    return _zone(row)


async def list_zones(conn: asyncpg.Connection, camera_id: uuid.UUID) -> list[Zone]:
    await _camera_tenant(conn, camera_id)
    return [_zone(r) for r in await _repo.zones(conn, [camera_id])]


async def update_zone(conn: asyncpg.Connection, zone_id: uuid.UUID, data: ZoneInput) -> Zone:
    current = await _repo.zone(conn, zone_id)
    if current is None:
        raise NotFound("no such zone")
    points = validate_zone(data.kind, data.points)
    if data.kind != current["kind"]:
        bound = [r for r in await _repo.rules(conn, [current["camera_id"]]) if r["zone_id"] == zone_id]
        if bound:
            raise InvalidRule("rules use this zone: a zone cannot become a line (or the reverse)", field="kind")
    row = await _repo.update_zone(conn, zone_id, name=data.name, kind=data.kind, points=points)
    if row is None:
        raise NotFound("no such zone")
    return _zone(row)


async def delete_zone(conn: asyncpg.Connection, zone_id: uuid.UUID) -> None:
    """Delete a zone and the rules bound to it."""
    if not await _repo.delete_zone(conn, zone_id):
        raise NotFound("no such zone")


# Rules ------------------------------------------------------------------------------------------------

async def _checked(conn: asyncpg.Connection, camera_id: uuid.UUID, data: RuleInput, *, today: date,
                   model_labels: frozenset[str]) -> tuple[RuleType, RuleParams]:
    params = _params(dict(data.params))
    zone = None
    if data.zone_id is not None:
        row = await _repo.zone(conn, data.zone_id)
        if row is None or row["camera_id"] != camera_id:
            raise InvalidRule(f"zone {data.zone_id} is not a zone of this camera", field="zone_id")
        zone = _zone(row)
    bases = _bases(await _repo.legal_bases(conn, [camera_id]))
    kind = check_rule(data.rule_type, params, zone=zone, bases=bases, today=today, model_labels=model_labels,
                      enabling=data.enabled)
    return kind, params


async def create_rule(conn: asyncpg.Connection, camera_id: uuid.UUID, data: RuleInput, *, today: date,
                      model_labels: frozenset[str]) -> Rule:
    """Enable an analytic on a camera. Refused (clear error) without a valid legal basis for its event type today,
    for face recognition or plate reading (always), and for fire/weapon without a model that detects them."""
    tenant = await _camera_tenant(conn, camera_id)
    kind, params = await _checked(conn, camera_id, data, today=today, model_labels=model_labels)
    row = await _repo.insert_rule(conn, rule_id=new_id(), tenant_id=tenant, camera_id=camera_id,
                                  zone_id=data.zone_id, rule_type=kind.value,
                                  params=msgspec.to_builtins(params), enabled=data.enabled)
    return _rule(row)


async def update_rule(conn: asyncpg.Connection, rule_id: uuid.UUID, data: RuleInput, *, today: date,
                      model_labels: frozenset[str]) -> Rule:
    """Change a rule's zone, parameters or state; its type is fixed (delete and recreate to change it)."""
    current = await _repo.rule(conn, rule_id)
    if current is None:
        raise NotFound("no such rule")
    if data.rule_type != current["rule_type"]:
        raise InvalidRule("a rule's type cannot change", field="rule_type")
    _, params = await _checked(conn, current["camera_id"], data, today=today, model_labels=model_labels)
    row = await _repo.update_rule(conn, rule_id, zone_id=data.zone_id, params=msgspec.to_builtins(params),
                                  enabled=data.enabled)
    if row is None:
        raise NotFound("no such rule")
    return _rule(row)


async def get_rule(conn: asyncpg.Connection, rule_id: uuid.UUID) -> Rule:
    row = await _repo.rule(conn, rule_id)
    if row is None:
        raise NotFound("no such rule")
    return _rule(row)


async def list_rules(conn: asyncpg.Connection, camera_id: uuid.UUID) -> list[Rule]:
    await _camera_tenant(conn, camera_id)
    return [_rule(r) for r in await _repo.rules(conn, [camera_id])]


async def delete_rule(conn: asyncpg.Connection, rule_id: uuid.UUID) -> None:
    if not await _repo.delete_rule(conn, rule_id):
        raise NotFound("no such rule")


# Plans and metering -----------------------------------------------------------------------------------

async def set_detection_plan(conn: asyncpg.Connection, tenant_id: uuid.UUID, plan: str) -> None:
    """Department admins set a tenant's plan, which weighs its share of a saturated detector."""
    if plan not in ("essential", "standard", "premium"):
        raise InvalidRule("plan is one of essential, standard, premium", field="plan")
    await _repo.upsert_plan(conn, tenant_id, plan)


async def detector_usage(conn: asyncpg.Connection, tenant_id: uuid.UUID, since: date, until: date,
                         ) -> list[UsageDay]:
    """Detector-seconds and frames per day, for the tenant's invoice."""
    return [UsageDay(day=r["day"], detector_seconds=float(r["detector_seconds"]), frames=int(r["frames"]))
            for r in await _repo.usage(conn, tenant_id, since, until)]


# The worker's operations, on a department-role connection ----------------------------------------

async def switch_off_unauthorised_rules(conn: asyncpg.Connection, today: date) -> list[uuid.UUID]:
    """Disable every enabled rule whose legal basis is no longer valid today; returns the rules switched off."""
    rules = [_rule(r) for r in await _repo.rules(conn, enabled_only=True)]
    bases: dict[uuid.UUID, list[LegalBasis]] = {}
    for row in await _repo.legal_bases(conn, list({r.camera_id for r in rules})):
        bases.setdefault(row["camera_id"], []).extend(_bases([row]))
    reasons = {
        rule.id: f"legal basis for this event type lapsed or missing on {today.isoformat()}"
        for rule in rules if not legal_basis_valid(rule.rule_type, bases.get(rule.camera_id, []), today)
    }
    return await _repo.switch_off_rules(conn, reasons)


async def load_camera_configs(conn: asyncpg.Connection, *, today: date, secrets: SecretBox,
                              plan_weights: dict[str, float]) -> list[CameraConfig]:
    """Every active camera authorised today, with its zones, the rules that may run today, and its tenant's
    fair-share weight."""
    cameras = await _repo.active_cameras(conn, today)
    ids = [c["id"] for c in cameras]
    zones: dict[uuid.UUID, list[Zone]] = {}
    for row in await _repo.zones(conn, ids):
        zones.setdefault(row["camera_id"], []).append(_zone(row))
    rules: dict[uuid.UUID, list[Rule]] = {}
    for row in await _repo.rules(conn, ids, enabled_only=True):
        rules.setdefault(row["camera_id"], []).append(_rule(row))
    bases: dict[uuid.UUID, list[LegalBasis]] = {}
    for row in await _repo.legal_bases(conn, ids):
        bases.setdefault(row["camera_id"], []).extend(_bases([row]))
    plans = await _repo.plans(conn)
    configs = []
    for camera in cameras:
        username = password = None
        if camera["credentials_sealed"] is not None:
            opened = msgspec.json.decode(secrets.open(camera["credentials_sealed"], column=CAMERA_CREDENTIALS,
                                                      row_id=camera["id"]))
            username, password = opened.get("username"), opened.get("password")
        camera_bases = bases.get(camera["id"], [])
        # Belt and braces with switch_off_unauthorised_rules: a rule without a valid basis today never runs.
        runnable = [r for r in rules.get(camera["id"], []) if legal_basis_valid(r.rule_type, camera_bases, today)]
        configs.append(CameraConfig(
            camera_id=camera["id"], tenant_id=camera["tenant_id"], name=camera["name"],
            stream_url=camera["sub_stream_url"] or camera["main_stream_url"], username=username, password=password,
            zones=tuple(zones.get(camera["id"], [])), rules=tuple(runnable), legal_bases=tuple(camera_bases),
            weight=plan_weights.get(plans.get(camera["tenant_id"], "essential"), 1.0),
            privacy_masks=_masks(camera["privacy_masks"]),
            expected_fps=None if camera["expected_fps"] is None else float(camera["expected_fps"]),
        ))
    return configs


def _masks(stored: str | None) -> tuple[tuple[tuple[float, float], ...], ...]:
    polygons = (tuple((float(x), float(y)) for x, y in mask.get("points", []))
                for mask in msgspec.json.decode(stored or "[]"))
    return tuple(polygon for polygon in polygons if len(polygon) >= 3)


async def record_usage(conn: asyncpg.Connection, day: date, usage: dict[uuid.UUID, tuple[float, int]]) -> None:
    await _repo.add_usage(conn, day, [(tenant, seconds, frames) for tenant, (seconds, frames) in usage.items()])
