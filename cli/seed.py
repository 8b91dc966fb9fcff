"""A realistic demo department: Val-d'Oise, its own sites, two communes under different forces, users of every role."""

from __future__ import annotations

import ipaddress
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta

import asyncpg
import msgspec
import pyotp

from core.crypto import CAMERA_CREDENTIALS, SecretBox
from core.db import Database
from core.ids import new_id
from core.tenancy import SECOND_FACTOR_ROLES
from identity import totp
from identity.passwords import hash_password
from identity.repository import IdentityRepository
from journal.service import JournalService
from tenants.network_repository import CameraNetworkRepository
from tenants.repository import TenancyRepository

DEMO_PASSWORD = "vigie-demo-2026!"


@dataclass(frozen=True)
class SeededUser:
    email: str
    role: str
    tenant: str
    totp_secret: str | None


@dataclass
class SeedResult:
    department_id: uuid.UUID
    tenants: dict[str, uuid.UUID] = field(default_factory=dict)
    forces: dict[str, uuid.UUID] = field(default_factory=dict)
    cameras: dict[str, uuid.UUID] = field(default_factory=dict)
    camera_tenants: dict[str, uuid.UUID] = field(default_factory=dict)
    users: list[SeededUser] = field(default_factory=list)
    created: bool = True


# (tenant key, name, kind, INSEE, live supervision, municipal police opt-in)
TENANTS = [
    ("departement", "Département du Val-d'Oise", "department", None, True, False),
    ("cergy", "Cergy", "commune", "95127", True, False),
    ("marines", "Marines", "commune", "95370", True, True),
    ("magny", "Magny-en-Vexin", "commune", "95355", False, False),
]
# (force key, name, kind, tenant key of a police municipale, communes)
FORCES = [
    (
        "pn_cergy",
        "Circonscription de sécurité publique de Cergy-Pontoise",
        "police_nationale",
        None,
        ["95127", "95500", "95476", "95218", "95637"],
    ),
    ("gn_marines", "Brigade de gendarmerie de Marines", "gendarmerie", None, ["95370", "95355"]),
    ("pm_marines", "Police municipale de Marines", "police_municipale", "marines", ["95370"]),
    ("sdis", "SDIS 95 — centre de secours de Cergy", "sdis", None, ["95127", "95370", "95355", "95500"]),
]
# (site key, tenant key, name, kind, INSEE, lat, lon)
SITES = [
    ("college", "departement", "Collège Les Touleuses", "college", "95127", 49.0447, 2.0523),
    ("mds", "departement", "Maison départementale des solidarités de Cergy", "social", "95127", 49.0386, 2.0778),
    ("parvis", "cergy", "Parvis de la préfecture", "public_space", "95127", 49.0353, 2.0769),
    ("gare", "cergy", "Gare de Cergy-Préfecture", "transport", "95127", 49.0367, 2.0783),
    ("mairie_marines", "marines", "Mairie de Marines", "administrative", "95370", 49.1447, 1.9836),
    ("place_marines", "marines", "Place du marché", "public_space", "95370", 49.1452, 1.9829),
    ("stade_magny", "magny", "Stade municipal", "sports", "95355", 49.1553, 1.7871),
]
# (camera key, site key, name, simulator stream, event types with a legal basis)
CAMERAS = [
    ("c1", "college", "Entrée principale", "cam01", ["forbidden_zone", "abandoned_object"]),
    ("c2", "college", "Cour de récréation", "cam02", ["forbidden_zone"]),
    ("c3", "mds", "Accueil", "cam03", []),
    ("c4", "parvis", "Parvis nord", "cam04", ["crowd_movement", "excessive_density", "abandoned_object"]),
    ("c5", "gare", "Quais", "cam05", ["wrong_way", "person_on_ground"]),
    ("c6", "mairie_marines", "Porte de la mairie", "cam06", ["forbidden_zone"]),
    ("c7", "place_marines", "Place du marché", "cam07", ["abandoned_object", "person_on_ground"]),
    ("c8", "stade_magny", "Tribune", "cam08", []),
]
# (email, name, role, tenant key, force key)
USERS = [
    ("admin@valdoise.demo", "Claire Admin", "department_admin", "departement", None),
    ("superviseur@valdoise.demo", "Hugo Superviseur", "supervisor", "departement", None),
    ("operateur1@valdoise.demo", "Inès Opératrice", "operator", "departement", None),
    ("operateur2@valdoise.demo", "Karim Opérateur", "operator", "departement", None),
    ("auditeur@valdoise.demo", "Nadia Auditrice", "auditor", "departement", None),
    ("finances@valdoise.demo", "Paul Finances", "finance", "departement", None),
    ("maire@cergy.demo", "Service vidéoprotection de Cergy", "tenant_admin", "cergy", None),
    ("maire@marines.demo", "Mairie de Marines", "tenant_admin", "marines", None),
    ("pm@marines.demo", "Brigadier PM Marines", "officer", "marines", "pm_marines"),
    ("gendarme@marines.demo", "Maréchal des logis Marines", "officer", "departement", "gn_marines"),
    ("policier@cergy.demo", "Gardien de la paix Cergy", "officer", "departement", "pn_cergy"),
]
# The roles that sign in with a second factor (auditors included: they read department-wide).
SECOND_FACTOR = frozenset(role.value for role in SECOND_FACTOR_ROLES)


async def seed_demo(
    conn: asyncpg.Connection,
    secrets: SecretBox,
    *,
    rtsp_host: str = "127.0.0.1",
    rtsp_base_port: int = 8554,
    department_code: str = "95",
) -> SeedResult:
    """Idempotent: a department already present is left as it is. Runs as the department role."""
    tenancy, identity, journal = TenancyRepository(), IdentityRepository(), JournalService()
    existing = await tenancy.department_by_code(conn, department_code)
    if existing is not None:
        return await load_demo(conn, secrets, existing["id"])
    department_id = new_id()
    result = SeedResult(department_id=department_id)
    await tenancy.insert_department(conn, department_id, department_code, "Val-d'Oise")
    # The camera networks a camera's address must fall in: the simulated cameras answer on this machine.
    await CameraNetworkRepository().add(conn, department_id, None, [
        (ipaddress.ip_network("127.0.0.0/8"), "Caméras simulées (python -m camsim, sur cette machine)"),
        (ipaddress.ip_network("10.0.0.0/8"), "Réseau vidéo de démonstration"),
    ])
    for key, name, kind, insee, live, pm_opt_in in TENANTS:
        tenant = await tenancy.insert_tenant(
            conn,
            {
                "id": new_id(),
                "department_id": department_id,
                "kind": kind,
                "name": name,
                "insee_code": insee,
                "live_supervision": live,
                "municipal_police_opt_in": pm_opt_in,
                "retention_days": 30 if kind == "department" else 15,
            },
        )
        result.tenants[key] = tenant.id
    for key, name, kind, tenant_key, communes in FORCES:
        force_id = new_id()
        await tenancy.insert_force(
            conn,
            {
                "id": force_id,
                "department_id": department_id,
                "kind": kind,
                "name": name,
                "tenant_id": result.tenants.get(tenant_key or ""),
                "phone": "17",
            },
        )
        await tenancy.set_force_communes(conn, force_id, department_id, communes)
        result.forces[key] = force_id
    sites: dict[str, tuple[uuid.UUID, uuid.UUID, str]] = {}
    for key, tenant_key, name, kind, insee, lat, lon in SITES:
        site = await tenancy.insert_site(
            conn,
            {
                "id": new_id(),
                "tenant_id": result.tenants[tenant_key],
                "name": name,
                "kind": kind,
                "insee_code": insee,
                "latitude": lat,
                "longitude": lon,
                "address": None,
            },
        )
        sites[key] = (site.id, site.tenant_id, insee)
    today = date.today()
    for key, site_key, name, stream, event_types in CAMERAS:
        site_id, tenant_id, insee = sites[site_key]
        camera_id = new_id()
        camera = await tenancy.insert_camera(
            conn,
            {
                "id": camera_id,
                "tenant_id": tenant_id,
                "site_id": site_id,
                "name": name,
                # Simulated camera n answers on rtsp_base_port + n - 1 (python -m camsim).
                "main_stream_url": f"rtsp://{rtsp_host}:{rtsp_base_port + int(stream[3:]) - 1}/main",
                "sub_stream_url": f"rtsp://{rtsp_host}:{rtsp_base_port + int(stream[3:]) - 1}/sub",
                "credentials_sealed": secrets.seal(
                    msgspec.json.encode({"username": "viewer", "password": "demo"}), column=CAMERA_CREDENTIALS,
                    row_id=camera_id,
                ),
                "insee_code": insee,
                "latitude": None,
                "longitude": None,
                "status": "provisioning",
                "privacy_masks": "[]",
            },
        )
        result.cameras[key] = camera.id
        result.camera_tenants[key] = tenant_id
        authorisation_id = await tenancy.insert_authorisation(
            conn,
            {
                "id": new_id(),
                "tenant_id": tenant_id,
                "camera_id": camera.id,
                "prefectoral_order_number": f"2024-PREF-95-VP-{int(stream[3:]):04d}",
                "purposes": ["crime_prevention", "public_buildings"],
                "max_retention_days": 15,
                "min_retention_days": None,
                "valid_from": today - timedelta(days=365),
                "valid_until": today + timedelta(days=3 * 365),
                "authorised_viewers": "Agents agréés du CSU départemental",
            },
        )
        for event_type in event_types:
            await tenancy.upsert_event_type(
                conn,
                {
                    "id": new_id(),
                    "tenant_id": tenant_id,
                    "authorisation_id": authorisation_id,
                    "event_type": event_type,
                    "legal_basis": "Arrêté préfectoral d'expérimentation (loi 2023-380 art. 10)",
                    "valid_from": today - timedelta(days=30),
                    "valid_until": today + timedelta(days=365),
                },
            )
    password_hash = hash_password(DEMO_PASSWORD)
    for email, name, role, tenant_key, force_key in USERS:
        secret = pyotp.random_base32() if role in SECOND_FACTOR else None
        user_id = new_id()
        habilitated = role in ("supervisor", "operator")
        await identity.insert_user(
            conn,
            {
                "id": user_id,
                "department_id": department_id,
                "email": email,
                "display_name": name,
                "password_hash": password_hash,
                "totp_secret_sealed": None if secret is None else totp.seal(secrets, secret, user_id),
                "agrement_number": f"AGR-95-{user_id.hex[-6:]}" if habilitated else None,
                "enquiry_date": today - timedelta(days=200) if habilitated else None,
                "habilitation_expires_on": today + timedelta(days=4 * 365) if habilitated else None,
                "training_date": today - timedelta(days=100) if habilitated else None,
            },
        )
        await identity.insert_membership(
            conn,
            {
                "id": new_id(),
                "tenant_id": result.tenants[tenant_key],
                "user_id": user_id,
                "role": role,
                "force_id": result.forces.get(force_key or ""),
            },
        )
        result.users.append(SeededUser(email=email, role=role, tenant=tenant_key, totp_secret=secret))
    for tenant_id in result.tenants.values():
        await journal.record(
            conn,
            tenant_id=tenant_id,
            actor=None,
            actor_role="system",
            action="tenant.seed",
            target_type="tenant",
            target_id=tenant_id,
            details={"source": "demo seed"},
        )
    return result


async def load_demo(conn: asyncpg.Connection, secrets: SecretBox, department_id: uuid.UUID) -> SeedResult:
    """The ids (and second-factor seeds) of a demo department seeded earlier, read back by name."""
    result = SeedResult(department_id=department_id, created=False)
    tenant_keys = {name: key for key, name, *_ in TENANTS}
    for row in await conn.fetch("SELECT id, name FROM tenants WHERE department_id = $1", department_id):
        if row["name"] in tenant_keys:
            result.tenants[tenant_keys[row["name"]]] = row["id"]
    force_keys = {name: key for key, name, *_ in FORCES}
    for row in await conn.fetch("SELECT id, name FROM forces WHERE department_id = $1", department_id):
        if row["name"] in force_keys:
            result.forces[force_keys[row["name"]]] = row["id"]
    camera_keys = {name: key for key, _, name, *_ in CAMERAS}
    for row in await conn.fetch(
        "SELECT id, tenant_id, name FROM cameras WHERE tenant_id = ANY($1::uuid[])", list(result.tenants.values())
    ):
        if row["name"] in camera_keys:
            result.cameras[camera_keys[row["name"]]] = row["id"]
            result.camera_tenants[camera_keys[row["name"]]] = row["tenant_id"]
    for email, _, role, tenant_key, _ in USERS:
        user = await conn.fetchrow("SELECT id, totp_secret_sealed FROM users WHERE lower(email) = $1", email)
        secret = None
        if user is not None and user["totp_secret_sealed"] is not None:
            secret = totp.open_seed(secrets, user["totp_secret_sealed"], user["id"])
        elif user is not None and role in SECOND_FACTOR:
            # A demo seeded before this role needed a second factor (the auditor): it gets one now, so it signs in.
            secret = pyotp.random_base32()
            await IdentityRepository().set_totp(conn, user["id"], totp.seal(secrets, secret, user["id"]))
        result.users.append(SeededUser(email=email, role=role, tenant=tenant_key, totp_secret=secret))
    return result


# Analytics of the demo cameras: (camera key, zone name, polygon or None, rule type, parameters). Every rule's event
# type has a legal basis on its camera (CAMERAS above); camera tamper needs none.
DETECTION: list[tuple[str, str | None, list[list[float]] | None, str, dict[str, object]]] = [
    ("c1", "Accès interdit est", [[0.78, 0.0], [1.0, 0.0], [1.0, 1.0], [0.78, 1.0]], "intrusion", {}),
    ("c1", "Accès interdit est", None, "loitering", {"dwell_s": 20.0}),
    ("c2", "Cour fermée", [[0.0, 0.5], [1.0, 0.5], [1.0, 1.0], [0.0, 1.0]], "intrusion", {}),
    ("c4", "Parvis", [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]], "excessive_density", {"max_objects": 6}),
    ("c5", "Quai", [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]], "wrong_way", {"allowed_direction": [1.0, 0.0]}),
    ("c6", "Porte", [[0.0, 0.6], [1.0, 0.6], [1.0, 1.0], [0.0, 1.0]], "intrusion", {}),
    ("c7", None, None, "person_on_ground", {}),
    *[(camera, None, None, "camera_tamper", {}) for camera in ("c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8")],
]


async def seed_demo_detection(db: Database, seeded: SeedResult, *, labels: frozenset[str]) -> int:
    """Draw the demo's zones and enable its rules through the detection service, tenant by tenant (RLS applies),
    as an administrator would through the API. Returns the number of rules enabled."""
    from datetime import UTC, datetime

    from inference import service as detection
    from inference.model import RuleInput, ZoneInput

    today, journal, enabled = datetime.now(UTC).date(), JournalService(), 0
    zones: dict[tuple[str, str], uuid.UUID] = {}
    for camera_key, zone_name, points, rule_type, params in DETECTION:
        camera_id, tenant_id = seeded.cameras[camera_key], seeded.camera_tenants[camera_key]
        async with db.for_tenants([tenant_id], camera_id=camera_id) as conn:
            zone_id = zones.get((camera_key, zone_name or ""))
            if zone_name is not None and zone_id is None and points is not None:
                zone = await detection.create_zone(conn, camera_id, ZoneInput(name=zone_name, points=points))
                zone_id = zones[(camera_key, zone_name)] = zone.id
            rule = await detection.create_rule(
                conn,
                camera_id,
                RuleInput(rule_type=rule_type, zone_id=zone_id, params=dict(params)),
                today=today,
                model_labels=labels,
            )
            await journal.note(
                conn,
                None,
                "detection.rule.create",
                ("rule", rule.id),
                tenant_id=tenant_id,
                camera_id=camera_id,
                rule_type=rule_type,
                source="demo seed",
            )
            enabled += 1
    return enabled
