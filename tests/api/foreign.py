"""A second department with canary-named objects: foreign to every actor of the seeded one."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, fields
from datetime import date, timedelta

import asyncpg

from core.crypto import FCM_TOKENS, SecretBox
from core.db import Database
from core.ids import new_id
from core.settings import Settings
from identity.repository import IdentityRepository
from tenants.repository import TenancyRepository

CANARY = "CANARY-7f3a"


@dataclass(frozen=True)
class ForeignObjects:
    department_id: uuid.UUID
    tenant_id: uuid.UUID
    site_id: uuid.UUID
    camera_id: uuid.UUID
    authorisation_id: uuid.UUID
    force_id: uuid.UUID
    user_id: uuid.UUID
    membership_id: uuid.UUID
    clip_id: uuid.UUID
    requisition_id: uuid.UUID
    export_id: uuid.UUID
    zone_id: uuid.UUID
    rule_id: uuid.UUID
    alert_id: uuid.UUID
    routing_rule_id: uuid.UUID
    device_id: uuid.UUID
    dispatch_id: uuid.UUID
    export_job_id: uuid.UUID
    invitation_id: uuid.UUID
    plan_id: uuid.UUID
    contract_id: uuid.UUID
    invoice_id: uuid.UUID
    run_id: uuid.UUID
    ticket_id: uuid.UUID

    def ids(self) -> list[str]:
        return [str(getattr(self, f.name)) for f in fields(self) if f.name != "department_id"]


async def create_foreign_department(conn: asyncpg.Connection) -> ForeignObjects:
    tenancy, identity = TenancyRepository(), IdentityRepository()
    existing = await tenancy.department_by_code(conn, "60")
    assert existing is None, "the foreign department is created once per test database"
    await conn.execute(
        "INSERT INTO communes (insee_code, name, department_code) VALUES ('60057', 'Beauvais', '60') "
        "ON CONFLICT DO NOTHING"
    )
    department_id = new_id()
    await tenancy.insert_department(conn, department_id, "60", f"Oise {CANARY}")
    tenant = await tenancy.insert_tenant(
        conn,
        {
            "id": new_id(),
            "department_id": department_id,
            "kind": "commune",
            "name": f"Beauvais {CANARY}",
            "insee_code": "60057",
            "live_supervision": True,
        },
    )
    site = await tenancy.insert_site(
        conn,
        {
            "id": new_id(),
            "tenant_id": tenant.id,
            "name": f"Site {CANARY}",
            "kind": "public_space",
            "insee_code": "60057",
        },
    )
    camera = await tenancy.insert_camera(
        conn,
        {
            "id": new_id(),
            "tenant_id": tenant.id,
            "site_id": site.id,
            "name": f"Camera {CANARY}",
            "insee_code": "60057",
            "main_stream_url": f"rtsp://10.0.0.1/{CANARY}",
        },
    )
    authorisation_id = await tenancy.insert_authorisation(
        conn,
        {
            "id": new_id(),
            "tenant_id": tenant.id,
            "camera_id": camera.id,
            "prefectoral_order_number": f"ORDER-{CANARY}",
            "purposes": ["crime_prevention"],
            "max_retention_days": 10,
            "valid_from": date.today() - timedelta(days=1),
            "valid_until": date.today() + timedelta(days=300),
        },
    )
    # Its intrusion rule (add_foreign_detection) has a legal basis: nothing here is switched off by the worker.
    await tenancy.upsert_event_type(
        conn,
        {
            "id": new_id(),
            "tenant_id": tenant.id,
            "authorisation_id": authorisation_id,
            "event_type": "forbidden_zone",
            "legal_basis": f"Arrêté {CANARY}",
            "valid_from": date.today() - timedelta(days=1),
            "valid_until": date.today() + timedelta(days=300),
        },
    )
    force_id = new_id()
    await tenancy.insert_force(
        conn,
        {
            "id": force_id,
            "department_id": department_id,
            "kind": "police_municipale",
            "name": f"PM {CANARY}",
            "tenant_id": tenant.id,
        },
    )
    await tenancy.set_force_communes(conn, force_id, department_id, ["60057"])
    user_id, membership_id = new_id(), new_id()
    await identity.insert_user(
        conn,
        {
            "id": user_id,
            "department_id": department_id,
            "email": "canary@beauvais.test",
            "display_name": f"User {CANARY}",
        },
    )
    await identity.insert_membership(
        conn,
        {"id": membership_id, "tenant_id": tenant.id, "user_id": user_id, "role": "tenant_admin", "force_id": None},
    )
    clip_id, requisition_id, export_id = new_id(), new_id(), new_id()
    await conn.execute(
        "INSERT INTO clips (id, tenant_id, camera_id, start_at, end_at, object_key, sha256, size_bytes, "
        "source_segments) VALUES ($1, $2, $3, now() - interval '1 minute', now(), 'clips/canary.mp4', $4, 10, '[]')",
        clip_id,
        tenant.id,
        camera.id,
        "0" * 64,
    )
    await conn.execute(
        "INSERT INTO requisitions (id, tenant_id, procedure_number, legal_frame, opj_name, opj_service, camera_ids, "
        "start_at, end_at, received_at, registered_by) VALUES ($1, $2, $3, 'flagrance', 'OPJ canary', 'SR Oise', "
        "$4, now() - interval '1 hour', now(), now(), $5)",
        requisition_id,
        tenant.id,
        f"PROC-{CANARY}",
        [camera.id],
        user_id,
    )
    await conn.execute(
        "INSERT INTO evidence_exports (id, tenant_id, requisition_id, exported_by, exported_by_name, object_key, "
        "package_sha256, manifest_sha256, signing_key_id) VALUES ($1, $2, $3, $4, 'canary', 'exports/canary.zip', "
        "$5, $5, 'k')",
        export_id,
        tenant.id,
        requisition_id,
        user_id,
        "0" * 64,
    )
    alert_id, routing_rule_id = new_id(), new_id()
    await conn.execute(
        "INSERT INTO alerts (id, tenant_id, camera_id, site_id, insee_code, rule_type, severity, priority, detail, "
        "source_event_id, first_seen_at, last_seen_at, sla_claim_due_at) VALUES ($1, $2, $3, $4, '60057', "
        "'intrusion', 3, 30, $5, $6, now(), now(), now())",
        alert_id,
        tenant.id,
        camera.id,
        site.id,
        f"Alert {CANARY}",
        new_id(),
    )
    await conn.execute(
        "INSERT INTO routing_rules (id, department_id, force_id, effect, note) VALUES ($1, $2, $3, 'add', $4)",
        routing_rule_id,
        department_id,
        force_id,
        f"Rule {CANARY}",
    )
    device_id, dispatch_id = new_id(), new_id()
    await conn.execute(
        "INSERT INTO push_devices (id, tenant_id, user_id, force_id, platform, token_sealed, token_hash, app_version) "
        "VALUES ($1, $2, $3, $4, 'android', $5, $6, $7)",
        device_id,
        tenant.id,
        user_id,
        force_id,
        # Sealed like every real token (the data key's rotation opens every sealed value of the database).
        SecretBox(Settings().data_key.get_secret_value()).seal(CANARY.encode(), column=FCM_TOKENS, row_id=device_id),
        uuid.uuid4().bytes,
        CANARY,
    )
    await conn.execute(
        "INSERT INTO push_dispatches (id, tenant_id, alert_id, camera_id, force_id, urgency, ttl_s, ordered_at, "
        "expires_at) VALUES ($1, $2, $3, $4, $5, 'urgent', 60, now(), now() + interval '60 seconds')",
        dispatch_id,
        tenant.id,
        alert_id,
        camera.id,
        force_id,
    )
    await conn.execute(
        "INSERT INTO push_targets (tenant_id, dispatch_id, user_id) VALUES ($1, $2, $3)",
        tenant.id,
        dispatch_id,
        user_id,
    )
    export_job_id = new_id()
    await conn.execute(
        "INSERT INTO evidence_export_jobs (id, tenant_id, requisition_id, requested_by, requested_by_name, "
        "requested_by_role, motive, estimated_bytes, size_cap_bytes) VALUES ($1, $2, $3, $4, $5, 'supervisor', "
        "'canary', 10, 100)",
        export_job_id,
        tenant.id,
        requisition_id,
        user_id,
        f"User {CANARY}",
    )
    invitation_id = new_id()
    await conn.execute(
        "INSERT INTO invitations (id, tenant_id, email, display_name, role, invited_by, expires_at) "
        "VALUES ($1, $2, 'invited@beauvais.test', $3, 'tenant_admin', $4, now() + interval '3 days')",
        invitation_id,
        tenant.id,
        f"Invitee {CANARY}",
        user_id,
    )
    plan_id, contract_id, invoice_id, run_id = await _foreign_billing(conn, department_id, tenant.id, camera.id)
    ticket_id = new_id()
    await conn.execute(
        "INSERT INTO maintenance_tickets (id, tenant_id, camera_id, health_state, detail, outage_since) "
        "VALUES ($1, $2, $3, 'offline', $4, now() - interval '1 hour')", ticket_id, tenant.id, camera.id,
        f"Panne {CANARY}")
    zone_id, rule_id = new_id(), new_id()  # written by add_foreign_detection, once this commits
    return ForeignObjects(
        department_id,
        tenant.id,
        site.id,
        camera.id,
        authorisation_id,
        force_id,
        user_id,
        membership_id,
        clip_id,
        requisition_id,
        export_id,
        zone_id,
        rule_id,
        alert_id,
        routing_rule_id,
        device_id,
        dispatch_id,
        export_job_id,
        invitation_id,
        plan_id,
        contract_id,
        invoice_id,
        run_id,
        ticket_id,
    )


async def _foreign_billing(
    conn: asyncpg.Connection, department_id: uuid.UUID, tenant_id: uuid.UUID, camera_id: uuid.UUID
) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID, uuid.UUID]:
    """A plan, a contract with a camera on it, an issued invoice and a run of the foreign department."""
    plan_id, contract_id, invoice_id, run_id = new_id(), new_id(), new_id(), new_id()
    await conn.execute(
        "INSERT INTO billing_plans (id, department_id, code, name) VALUES ($1, $2, 'canary', $3)",
        plan_id, department_id, f"Plan {CANARY}")
    await conn.execute(
        "INSERT INTO billing_plan_prices (id, department_id, plan_id, effective_from, monthly_price_ht) "
        "VALUES ($1, $2, $3, '2026-01-01', 10)", new_id(), department_id, plan_id)
    await conn.execute(
        "INSERT INTO billing_contracts (id, tenant_id, department_id, reference, start_date, buyer_name, buyer_siret, "
        "buyer_address_line, buyer_postcode, buyer_city, billing_contact_name, billing_contact_email, "
        "availability_target, sla_credit_percent_per_point, sla_credit_cap_percent) VALUES ($1, $2, $3, $4, "
        "'2026-01-01', $5, '21600057000014', 'x', '60000', 'Beauvais', $5, 'canary@beauvais.test', 99, 10, 50)",
        contract_id, tenant_id, department_id, "CV-CANARY", f"Buyer {CANARY}")
    await conn.execute(
        "INSERT INTO billing_contract_cameras (id, tenant_id, department_id, contract_id, camera_id, plan_id, "
        "start_date) VALUES ($1, $2, $3, $4, $5, $6, '2026-01-01')",
        new_id(), tenant_id, department_id, contract_id, camera_id, plan_id)
    await conn.execute(
        "INSERT INTO billing_invoices (id, tenant_id, department_id, kind, status, period_start, period_end, "
        "contract_id, buyer, seller, vat_rate, annex) VALUES ($1, $2, $3, 'invoice', 'draft', '2026-10-01', "
        "'2026-10-31', $4, $5, $5, 20, '{}')",
        invoice_id, tenant_id, department_id, contract_id, f'{{"name": "{CANARY}"}}')
    await conn.execute(
        "INSERT INTO billing_invoice_lines (id, tenant_id, invoice_id, position, kind, description, quantity, "
        "unit_code, unit_price, net_amount, vat_rate) VALUES ($1, $2, $3, 1, 'plan', $4, 31, 'DAY', 10, 10, 20)",
        new_id(), tenant_id, invoice_id, f"Line {CANARY}")
    await conn.execute(
        "UPDATE billing_invoices SET status = 'issued', number = 'F60-2026-000001', year = 2026, sequence = 1, "
        "issue_date = '2026-11-02', due_date = '2026-12-02', issued_at = now(), total_ht = 10, total_vat = 2, "
        "total_ttc = 12 WHERE id = $1", invoice_id)
    await conn.execute(
        "INSERT INTO billing_runs (id, department_id, month, summary) VALUES ($1, $2, '2026-10-01', $3)",
        run_id, department_id, f'{{"problems": [{{"tenant_id": "{tenant_id}", "tenant_name": "{CANARY}", '
        f'"problem": "x"}}]}}')
    return plan_id, contract_id, invoice_id, run_id


async def add_foreign_detection(database: Database, foreign: ForeignObjects) -> None:
    """Detection tables are written by the runtime role only: insert inside the foreign tenant's own scope."""
    async with database.for_tenants([foreign.tenant_id]) as scoped:
        await scoped.execute(
            "INSERT INTO detection_zones (id, tenant_id, camera_id, name, kind, points) VALUES ($1, $2, $3, $4, "
            "'zone', '[[0.1, 0.1], [0.5, 0.1], [0.5, 0.5]]')",
            foreign.zone_id,
            foreign.tenant_id,
            foreign.camera_id,
            f"Zone {CANARY}",
        )
        await scoped.execute(
            "INSERT INTO detection_rules (id, tenant_id, camera_id, zone_id, rule_type) VALUES ($1, $2, $3, $4, "
            "'intrusion')",
            foreign.rule_id,
            foreign.tenant_id,
            foreign.camera_id,
            foreign.zone_id,
        )
