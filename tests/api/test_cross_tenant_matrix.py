"""Cross-tenant matrix generated from the OpenAPI route table: every operation that takes an id, for every role,
with ids of objects outside the caller's scope, must be refused (404/403/422) and leak nothing."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, fields
from typing import Any

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from billing.metering import MONTH_PATTERN
from cli.seed import SeedResult
from core.db import Database
from tests.api.conftest import Actor
from tests.api.foreign import CANARY, ForeignObjects, add_foreign_detection, create_foreign_department

pytestmark = pytest.mark.integration

# Every kind of object the foreign department holds, named as the routes name their id parameters.
ID_PARAMETERS = tuple(f.name for f in fields(ForeignObjects) if f.name != "department_id")
DEPARTMENT_WIDE = {"department_admin", "supervisor", "operator", "auditor", "finance"}
# Bodies that name no tenant object (credentials, refresh tokens): nothing foreign to inject.
BODIES_WITHOUT_IDS = {
    ("post", "/auth/login"),
    ("post", "/auth/login/totp"),
    ("post", "/auth/console/login"),
    ("post", "/auth/console/login/totp"),
    ("post", "/auth/refresh"),
    ("post", "/auth/authorize"),
    ("post", "/auth/token"),
    ("post", "/auth/enrolment"),
    ("post", "/me/password"),
    ("post", "/me/totp"),
}


def body_template(method: str, path: str, ids: dict[str, str]) -> dict[str, Any] | None:
    """A valid body for each operation that takes one; ids that a body names are the foreign ones."""
    unique = uuid.uuid4().hex[:8]
    templates: dict[tuple[str, str], dict[str, Any]] = {
        ("post", "/tenants"): {"kind": "epci", "name": f"matrix {unique}"},
        ("patch", "/tenants/{tenant_id}"): {"retention_days": 7},
        ("post", "/tenants/{tenant_id}/sites"): {"name": f"s {unique}", "kind": "other", "insee_code": "95127"},
        ("patch", "/sites/{site_id}"): {"name": f"s {unique}"},
        ("post", "/cameras"): {"site_id": ids["site_id"], "name": f"c {unique}", "main_stream_url": "rtsp://h/x"},
        ("patch", "/cameras/{camera_id}"): {"name": f"c {unique}"},
        # Names no tenant object: never sent by the matrix (and it would replace the department's list).
        ("put", "/camera-networks"): {"networks": [{"network": "10.0.0.0/8", "label": "matrix"}]},
        ("post", "/cameras/{camera_id}/authorisations"): {
            "prefectoral_order_number": "X",
            "purposes": ["crime_prevention"],
            "max_retention_days": 10,
            "valid_from": "2026-01-01",
            "valid_until": "2028-01-01",
        },
        ("post", "/users"): {
            "email": f"m{unique}@x.test",
            "display_name": "m",
            "membership": {"tenant_id": ids["tenant_id"], "role": "officer", "force_id": ids["force_id"]},
        },
        ("patch", "/users/{user_id}"): {"display_name": f"u {unique}"},
        ("post", "/users/{user_id}/memberships"): {"tenant_id": ids["tenant_id"], "role": "tenant_admin"},
        ("post", "/users/{user_id}/external-identities"): {"issuer": "https://idp.example", "subject": f"s{unique}"},
        ("put", "/department/federation"): {"trust_idp_mfa": False},
        ("post", "/cameras/{camera_id}/playback"): {
            "start": "2026-11-26T00:00:00Z",
            "end": "2026-11-26T00:10:00Z",
            "motive": "matrix",
        },
        ("post", "/cameras/{camera_id}/playback/hls"): {
            "start": "2026-11-26T00:00:00Z",
            "end": "2026-11-26T00:10:00Z",
            "motive": "matrix",
        },
        ("post", "/clips/{clip_id}/view"): {"motive": "matrix"},
        ("post", "/cameras/{camera_id}/live"): {"motive": "matrix", "stream": "sub"},
        ("post", "/cameras/{camera_id}/zones"): {"name": f"z {unique}", "points": [[0.1, 0.1], [0.4, 0.1], [0.4, 0.4]]},
        ("put", "/zones/{zone_id}"): {"name": f"z {unique}", "points": [[0.1, 0.1], [0.4, 0.1], [0.4, 0.4]]},
        ("post", "/cameras/{camera_id}/rules"): {"rule_type": "intrusion", "zone_id": ids["zone_id"]},
        ("put", "/rules/{rule_id}"): {"rule_type": "intrusion", "zone_id": ids["zone_id"], "enabled": False},
        ("put", "/tenants/{tenant_id}/detection-plan"): {"plan": "premium"},
        ("put", "/tenants/{tenant_id}/retention"): {"tier": "continuous", "days": 10},
        ("post", "/requisitions"): {
            "procedure_number": "P",
            "legal_frame": "flagrance",
            "opj_name": "O",
            "opj_service": "S",
            "camera_ids": [ids["camera_id"]],
            "start": "2026-11-25T00:00:00Z",
            "end": "2026-11-25T01:00:00Z",
            "received_at": "2026-11-26T00:00:00Z",
        },
        ("post", "/requisitions/{requisition_id}/release"): {"reason": "matrix"},
        ("post", "/requisitions/{requisition_id}/exports"): {"motive": "matrix"},
        ("post", "/exports/{export_id}/download"): {"motive": "matrix"},
        ("post", "/exports/{export_id}/transmission"): {"transmitted_at": "2026-11-26T00:00:00Z", "recipient": "PR"},
        ("post", "/forces"): {
            "kind": "police_municipale",
            "name": f"f {unique}",
            "communes": ["60057"],
            "tenant_id": ids["tenant_id"],
        },
        ("patch", "/forces/{force_id}"): {"name": f"f {unique}"},
        ("post", "/devices"): {"fcm_token": f"matrix{unique}:APA91b" + "x" * 140, "platform": "android"},
        ("put", "/devices/{device_id}/token"): {"fcm_token": f"matrix{unique}:APA91b" + "y" * 140},
        ("post", "/mobile/dispatches/{dispatch_id}/status"): {"status": "delivered", "device_id": ids["device_id"]},
        ("post", "/alerts/{alert_id}/verify"): {"media": "snapshot", "motive": "matrix check"},
        ("post", "/alerts/{alert_id}/clip/view"): {"motive": "matrix check"},
        ("post", "/alerts/{alert_id}/snapshot/view"): {"motive": "matrix check"},
        ("post", "/alerts/{alert_id}/dismiss"): {"reason": "test"},
        ("post", "/alerts/{alert_id}/dispatch"): {"force_ids": [ids["force_id"]]},
        ("post", "/alerts/{alert_id}/close"): {"outcome": "other"},
        ("post", "/alerts/{alert_id}/sop-steps"): {"step": "levee_de_doute"},
        ("post", "/logbook"): {"text": f"matrix {unique}", "alert_id": ids["alert_id"]},
        ("post", "/logbook/handovers"): {"notes": f"matrix {unique}"},
        ("post", "/routing-rules"): {"force_id": ids["force_id"], "effect": "add"},
        ("put", "/alert-policies"): {"rule_type": "intrusion", "severity": 3},
        ("put", "/billing/issuer"): {
            "legal_name": "matrix",
            "siret": "25950001500013",
            "vat_number": "FR76259500015",
            "address_line": "x",
            "postcode": "95000",
            "city": "x",
        },
        ("post", "/billing/plans"): {
            "code": f"m{unique}",
            "name": "m",
            "price": {"effective_from": "2027-01-01", "monthly_price_ht": "10"},
        },
        ("post", "/billing/plans/{plan_id}/prices"): {"effective_from": "2027-02-01", "monthly_price_ht": "11"},
        ("post", "/billing/contracts"): {
            "tenant_id": ids["tenant_id"],
            "reference": f"M-{unique}",
            "start_date": "2030-01-01",
            "buyer_name": "m",
            "buyer_siret": "21950127700012",
            "buyer_address_line": "x",
            "buyer_postcode": "95000",
            "buyer_city": "x",
            "billing_contact_name": "m",
            "billing_contact_email": "m@x.test",
        },
        ("patch", "/billing/contracts/{contract_id}"): {"billing_contact_name": f"m {unique}"},
        ("post", "/billing/contracts/{contract_id}/cameras"): {
            "camera_id": ids["camera_id"],
            "plan_id": ids["plan_id"],
            "from_date": "2030-01-01",
        },
        ("post", "/billing/runs"): {"month": "2026-10"},
        ("post", "/billing/invoices/{invoice_id}/payments"): {
            "amount": "1",
            "paid_on": "2026-11-20",
            "method": "transfer",
        },
        ("post", "/billing/invoices/{invoice_id}/credit-note"): {"reason": "matrix"},
        ("post", "/maintenance-tickets/{ticket_id}/resolve"): {"note": "matrix"},
    }
    return templates.get((method, path))


@dataclass(frozen=True)
class Case:
    method: str
    path: str
    url: str
    body: dict[str, Any] | None
    foreign_markers: tuple[str, ...]


def _operations(app: Litestar) -> list[tuple[str, str, Any]]:
    schema = app.openapi_schema
    operations = []
    for path, item in (schema.paths or {}).items():
        for method in ("get", "post", "put", "patch", "delete"):
            operation = getattr(item, method, None)
            if operation is not None:
                operations.append((method, path, operation))
    return operations


def _cases(app: Litestar, ids: dict[str, str], markers: tuple[str, ...]) -> list[Case]:
    cases: list[Case] = []
    for method, path, operation in _operations(app):
        path_ids = re.findall(r"\{(\w+)\}", path)
        unknown = [p for p in path_ids if p not in ID_PARAMETERS]
        assert not unknown, f"{method.upper()} {path}: the matrix has no foreign object for {unknown}"
        query_ids = [
            p.name
            for p in (operation.parameters or [])
            if getattr(p, "param_in", None) == "query" and p.name in ID_PARAMETERS
        ]
        has_body = operation.request_body is not None and (method, path) not in BODIES_WITHOUT_IDS
        body = body_template(method, path, ids) if has_body else None
        assert not has_body or body is not None, f"{method.upper()} {path}: add a body template to the matrix"
        body_has_ids = body is not None and any(v in str(body) for v in ids.values())
        if not (path_ids or query_ids or body_has_ids):
            continue
        url = path
        for name in path_ids:
            url = url.replace("{" + name + "}", ids[name])
        # Required parameters that are not ids get a plain valid value, so the id is what the route judges.
        required = "&".join(
            f"{p.name}={_sample(p)}"
            for p in (operation.parameters or [])
            if getattr(p, "param_in", None) == "query" and p.required and p.name not in ID_PARAMETERS
        )
        if query_ids:
            for name in query_ids:
                cases.append(Case(method, path, f"{url}?{name}={ids[name]}&{required}".rstrip("&"), body, markers))
        else:
            cases.append(Case(method, path, f"{url}?{required}" if required else url, body, markers))
    return cases


def _sample(parameter: Any) -> str:
    schema = parameter.schema
    if getattr(schema, "pattern", None) == MONTH_PATTERN:
        return "2026-10"
    fmt = getattr(schema, "format", None)
    kind = getattr(schema, "type", None)
    if fmt is not None and str(getattr(fmt, "value", fmt)) == "date":
        return "2026-11-01"
    if fmt is not None and str(getattr(fmt, "value", fmt)) == "date-time":
        return "2026-11-01T00:00:00Z"
    if kind is not None and str(getattr(kind, "value", kind)) == "integer":
        return "1"
    return "x"


@pytest.fixture(scope="module")
async def foreign(department_pool: asyncpg.Pool, database: Database) -> ForeignObjects:
    async with department_pool.acquire() as conn, conn.transaction():
        created = await create_foreign_department(conn)  # type: ignore[arg-type]
    await add_foreign_detection(database, created)
    return created


async def _sibling_ids(department_pool: asyncpg.Pool, tenant_id: uuid.UUID) -> dict[str, str]:
    """Objects of a tenant of the same department that the actor's scope excludes."""
    async with department_pool.acquire() as conn:
        camera = await conn.fetchrow("SELECT id, site_id FROM cameras WHERE tenant_id = $1 LIMIT 1", tenant_id)
        authorisation = await conn.fetchval(
            "SELECT id FROM camera_authorisations WHERE tenant_id = $1 LIMIT 1", tenant_id
        )
    assert camera is not None
    return {"site_id": str(camera["site_id"]), "camera_id": str(camera["id"]), "authorisation_id": str(authorisation)}


async def test_cross_tenant_matrix(
    app: Litestar,
    client: AsyncTestClient[Litestar],
    actors: dict[str, Actor],
    seeded: SeedResult,
    foreign: ForeignObjects,
    department_pool: asyncpg.Pool,
) -> None:
    foreign_ids = {name: str(getattr(foreign, name)) for name in ID_PARAMETERS}
    # The tenant of the same department that each actor's scope excludes.
    excluded = {
        "maire@cergy.demo": "marines",
        "maire@marines.demo": "cergy",
        "pm@marines.demo": "cergy",
        "policier@cergy.demo": "marines",
        "gendarme@marines.demo": "cergy",
    }
    total, succeeded, failures = 0, 0, []
    for email, actor in actors.items():
        id_sets = [(foreign_ids, (CANARY, *foreign.ids()))]
        sibling_tenant = seeded.tenants[excluded.get(email, "magny")]
        sibling = await _sibling_ids(department_pool, sibling_tenant)
        sibling_full = {**foreign_ids, **sibling}
        if actor.role not in DEPARTMENT_WIDE:  # the department directory is visible to department staff
            sibling_full["tenant_id"] = str(sibling_tenant)
        id_sets.append(
            (sibling_full, tuple(sibling.values()) + (str(sibling_tenant),) * (actor.role not in DEPARTMENT_WIDE))
        )
        for ids, markers in id_sets:
            for case in _cases(app, ids, markers):
                total += 1
                response = await client.request(case.method.upper(), case.url, json=case.body, headers=actor.headers)
                text = response.text
                if response.headers.get("content-type", "").startswith("application/problem+json"):
                    # `instance` echoes the caller's own request path: not data of the foreign tenant.
                    text = str({k: v for k, v in response.json().items() if k != "instance"})
                leaked = [m for m in case.foreign_markers if m in text]
                mutated = case.method != "get" and response.status_code < 300
                read_foreign = case.method == "get" and response.status_code < 300 and leaked
                if mutated or read_foreign or response.status_code >= 500 or leaked:
                    succeeded += 1
                    failures.append(f"{actor.role} {case.method.upper()} {case.url} -> {response.status_code}")
                elif "{" in case.path and case.method == "get" and response.status_code not in (403, 404):
                    failures.append(f"{actor.role} {case.url}: expected 404, got {response.status_code}")
    print(f"\ncross-tenant: {succeeded} of {total} succeeded")
    assert total > 300, total
    assert failures == []
