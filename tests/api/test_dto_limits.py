"""Every request DTO's limits match the database (issue 11 item 10): each request body of every route, filled with every
field at its largest allowed value, is answered without a server error (a DTO looser than its column's CHECK would end
in a 500), and each bounded field one past its maximum is a 4xx. Runs on a database of its own: it changes things."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import msgspec.inspect as mi
import pytest
from litestar import Litestar
from litestar.handlers import HTTPRouteHandler
from litestar.params import HeaderParameter, ParameterKwarg
from litestar.testing import AsyncTestClient

from api.app import create_app
from cli.database import department_database
from cli.main import ensure_signing_key
from cli.seed import SeedResult, seed_demo
from core.crypto import SecretBox
from core.ids import new_id
from core.migrate import prepare_database
from core.settings import Settings
from tests.api.conftest import sign_in

pytestmark = pytest.mark.integration

# Who tries each route, in order: the first answer that is not 403 is the one judged.
ROLES = ("department_admin", "supervisor", "operator", "tenant_admin", "officer")
# Routes about the caller's own credentials: tried by an account no other test of this database relies on.
OWN_ACCOUNT = re.compile(r"^/(me|auth)/")
UNBOUNDED_TEXT = 5000
UNBOUNDED_INT = 2**63 - 1


@dataclass
class Limits:
    client: AsyncTestClient[Litestar]
    tokens: dict[str, dict[str, str]]
    ids: dict[str, str]


@pytest.fixture(scope="module")
async def limits_app(api_settings: Settings, tmp_path_factory: pytest.TempPathFactory,
                     ) -> AsyncIterator[Limits]:
    name = f"{api_settings.database.name}_limits"
    settings = await prepare_database(
        api_settings.model_copy(update={"database": api_settings.database.model_copy(update={"name": name}),
                                        "var_dir": Path(tmp_path_factory.mktemp("limits"))}))
    await ensure_signing_key(settings)
    async with department_database(settings) as db, db.cross_tenant("test setup") as conn, conn.transaction():
        seeded = await seed_demo(conn, SecretBox(settings.data_key.get_secret_value()))
        ids = await _objects(conn, seeded)
    try:
        async with AsyncTestClient(app=create_app(settings)) as client:
            tokens: dict[str, dict[str, str]] = {}
            for user in seeded.users:
                if user.role in ROLES and user.role not in tokens and user.email != "policier@cergy.demo":
                    body = await sign_in(client, user.email, totp_secret=user.totp_secret)
                    tokens[user.role] = {"authorization": f"Bearer {body['access_token']}"}
            own = await sign_in(client, "policier@cergy.demo")
            tokens["own_account"] = {"authorization": f"Bearer {own['access_token']}"}
            yield Limits(client, tokens, ids)
    finally:
        admin = await asyncpg.connect(settings.database.admin_dsn.get_secret_value())
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def _objects(conn: asyncpg.Connection, seeded: SeedResult) -> dict[str, str]:
    """An object of each kind a route names, in Cergy (supervised live, so the CSU's staff see it)."""
    tenant, camera = seeded.tenants["cergy"], seeded.cameras["c4"]
    row = await conn.fetchrow("SELECT site_id FROM cameras WHERE id = $1", camera)
    authorisation = await conn.fetchval("SELECT id FROM camera_authorisations WHERE camera_id = $1 LIMIT 1", camera)
    zone = await conn.fetchval("SELECT id FROM detection_zones WHERE camera_id = $1 LIMIT 1", camera)
    rule = await conn.fetchval("SELECT id FROM detection_rules WHERE camera_id = $1 LIMIT 1", camera)
    user = await conn.fetchval("SELECT id FROM users WHERE email = 'operateur2@valdoise.demo'")
    alert, requisition, export, clip = new_id(), new_id(), new_id(), new_id()
    await conn.execute(
        "INSERT INTO alerts (id, tenant_id, camera_id, site_id, insee_code, rule_type, severity, priority, "
        "source_event_id, first_seen_at, last_seen_at, sla_claim_due_at) SELECT $1, tenant_id, id, site_id, "
        "insee_code, 'intrusion', 3, 30, $2, now(), now(), now() FROM cameras WHERE id = $3", alert, new_id(), camera)
    await conn.execute(
        "INSERT INTO requisitions (id, tenant_id, procedure_number, legal_frame, opj_name, opj_service, camera_ids, "
        "start_at, end_at, received_at, registered_by) VALUES ($1, $2, 'PV 1', 'flagrance', 'OPJ', 'SR', $3, "
        "now() - interval '1 hour', now(), now(), $4)", requisition, tenant, [camera], user)
    await conn.execute(
        "INSERT INTO evidence_exports (id, tenant_id, requisition_id, exported_by, exported_by_name, object_key, "
        "package_sha256, manifest_sha256, signing_key_id) VALUES ($1, $2, $3, $4, 'x', 'exports/x.zip', $5, $5, 'k')",
        export, tenant, requisition, user, "0" * 64)
    await conn.execute(
        "INSERT INTO clips (id, tenant_id, camera_id, alert_id, start_at, end_at, object_key, sha256, size_bytes, "
        "source_segments) VALUES ($1, $2, $3, $4, now() - interval '1 minute', now(), 'event/x.mp4', $5, 10, '[]')",
        clip, tenant, camera, alert, "0" * 64)
    assert row is not None
    found = {"tenant_id": tenant, "camera_id": camera, "site_id": row["site_id"], "authorisation_id": authorisation,
             "zone_id": zone, "rule_id": rule, "user_id": user, "alert_id": alert, "requisition_id": requisition,
             "export_id": export, "clip_id": clip, "force_id": seeded.forces["pn_cergy"]}
    return {k: str(v) for k, v in found.items() if v is not None}


@dataclass(frozen=True)
class BodyRoute:
    method: str
    path: str
    body: mi.StructType
    # Headers the route requires besides the token (e.g. an enrolment token): a plain value, so the body is judged.
    headers: dict[str, str]


def _bodies(app: Litestar) -> Iterator[BodyRoute]:
    """Every route that takes a JSON body."""
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            if not isinstance(handler, HTTPRouteHandler):
                continue
            parameters = handler.parsed_fn_signature.parameters
            data = parameters.get("data")
            if data is None:
                continue
            info = mi.type_info(data.annotation)
            assert isinstance(info, mi.StructType), f"{route.path}: bodies are msgspec structs"
            headers = {}
            for parameter in parameters.values():
                kwarg = parameter.kwarg_definition
                if isinstance(kwarg, HeaderParameter) and kwarg.name:
                    headers[kwarg.name] = "x" * 32
                elif isinstance(kwarg, ParameterKwarg) and kwarg.header:
                    headers[kwarg.header] = "x" * 32
            for method in sorted(handler.http_methods):
                yield BodyRoute(method, route.path, info, headers)


# Fields whose value decides which other fields may come with it: the value that admits them all (a responder's
# outcome comes with `closed` only).
ADMITS_EVERY_FIELD: dict[tuple[str, str], str] = {("StatusReport", "status"): "closed"}


def _text(kind: mi.StrType, size: int) -> str:
    """A string of `size` characters the field's pattern accepts."""
    if kind.pattern is None:
        return "x" * size
    shaped = [prefix + "a" * (size - len(prefix) - len(suffix)) + suffix
              for prefix, suffix in (("", ""), ("", "@dto.test"), ("https://", ""), ("rtsp://", ""))]
    # Identifiers and amounts of a fixed shape (INSEE code, SIRET, VAT number, IBAN, prices, percentages).
    fixed = ("95127", "123456789", "123456", "73282932000074", "FR40303265045", "FR7630006000011234567890189",
             "99999.99", "9999.9999", "99.99", "plan_code", "2026-11")
    for candidate in (*shaped, "1" * size, *fixed):
        if re.search(kind.pattern, candidate) and (kind.min_length or 0) <= len(candidate) <= size:
            return candidate
    raise AssertionError(f"no sample for pattern {kind.pattern!r}: add one to _text")


def _value(kind: mi.Type, name: str, ids: dict[str, str], over: bool = False) -> Any:
    """The largest value the type allows (one past it when `over`), named ids pointing at real objects."""
    if isinstance(kind, mi.Metadata):  # a type with documentation attached
        kind = kind.type
    if isinstance(kind, mi.UnionType):
        kind = next(t for t in kind.types if not isinstance(t, mi.NoneType))
        if isinstance(kind, mi.Metadata):
            kind = kind.type
    if isinstance(kind, mi.StrType):
        size = kind.max_length if kind.max_length is not None else UNBOUNDED_TEXT
        return _text(kind, size + over)
    if isinstance(kind, mi.IntType):
        top = kind.le if kind.le is not None else (kind.lt - 1 if kind.lt is not None else UNBOUNDED_INT)
        return top + over
    if isinstance(kind, mi.FloatType):
        return (kind.le if kind.le is not None else 1e300) + (1.0 if over else 0.0)
    if isinstance(kind, mi.BoolType):
        return False
    if isinstance(kind, mi.LiteralType):
        return kind.values[0]
    if isinstance(kind, mi.EnumType):
        return next(iter(kind.cls)).value
    if isinstance(kind, mi.UUIDType):
        return ids.get(name, ids.get(name.removesuffix("s"), str(uuid.uuid4())))
    if isinstance(kind, mi.DateType):
        today = date.today()
        later = any(w in name for w in ("until", "expires"))
        return (today + timedelta(days=365) if later else today - timedelta(days=1)).isoformat()
    if isinstance(kind, mi.DateTimeType):
        now = datetime.now(UTC)
        return (now - timedelta(minutes=10 if "start" in name else 1)).isoformat()
    if isinstance(kind, mi.ListType | mi.SetType):
        item = _value(kind.item_type, name, ids)
        count = kind.max_length if kind.max_length is not None else 100
        return [item] * (count + over)
    if isinstance(kind, mi.TupleType):
        return [_value(t, name, ids) for t in kind.item_types]
    if isinstance(kind, mi.DictType):
        return {}
    if isinstance(kind, mi.StructType):
        return {f.encode_name: ADMITS_EVERY_FIELD.get((kind.cls.__name__, f.name)) or _value(f.type, f.name, ids)
                for f in kind.fields}
    raise AssertionError(f"{name}: no sample for {kind!r}")


def _bounded(kind: mi.Type) -> bool:
    if isinstance(kind, mi.UnionType):
        return any(_bounded(t) for t in kind.types)
    if isinstance(kind, mi.StrType | mi.ListType | mi.SetType):
        return kind.max_length is not None
    if isinstance(kind, mi.IntType | mi.FloatType):
        return kind.le is not None or kind.lt is not None
    return False


def _one_past(kind: mi.StructType, ids: dict[str, str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """The full body with one bounded field (nested ones too) one past its maximum, for each such field."""
    body = _value(kind, "", ids)
    for field in kind.fields:
        inner = field.type
        if isinstance(inner, mi.UnionType):
            inner = next(t for t in inner.types if not isinstance(t, mi.NoneType))
        if _bounded(field.type):
            yield field.name, {**body, field.encode_name: _value(field.type, field.name, ids, over=True)}
        if isinstance(inner, mi.StructType):
            for nested, value in _one_past(inner, ids):
                yield f"{field.name}.{nested}", {**body, field.encode_name: value}
        if isinstance(inner, mi.ListType) and isinstance(inner.item_type, mi.StructType):
            for nested, value in _one_past(inner.item_type, ids):
                yield f"{field.name}[0].{nested}", {**body, field.encode_name: [value]}


def _url(path: str, ids: dict[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        return ids.get(match.group(1), str(uuid.uuid4()))
    return re.sub(r"\{(\w+)(?::\w+)?\}", one, path)


async def _send(limits: Limits, route: BodyRoute, body: dict[str, Any]) -> tuple[int, dict[str, Any] | None]:
    roles = ("own_account",) if OWN_ACCOUNT.match(route.path) else ROLES
    status, problem = 403, None
    for role in roles:
        response = await limits.client.request(route.method, _url(route.path, limits.ids), json=body,
                                               headers={**route.headers, **limits.tokens[role]})
        status = response.status_code
        is_problem = response.headers.get("content-type", "").startswith("application/problem+json")
        problem = response.json() if is_problem else None
        if status != 403:
            break
    return status, problem


def _body_refused(problem: dict[str, Any] | None) -> bool:
    """A validation problem about the body itself (not, say, a parameter of the URL)."""
    return problem is not None and any(e.get("source") == "body" for e in problem.get("errors") or [])


async def test_every_request_body_at_its_limits_is_stored_or_refused_never_a_server_error(
    limits_app: Limits, app: Litestar,
) -> None:
    server_errors, rejected_maxima, accepted_overflows = [], [], []
    routes = list(_bodies(app))
    for route in routes:
        where = f"{route.method} {route.path}"
        status, problem = await _send(limits_app, route, _value(route.body, "", limits_app.ids))
        if status >= 500:
            server_errors.append(f"{where} at its maxima -> {status}: {problem}")
        elif status == 400 and _body_refused(problem):
            assert problem is not None
            rejected_maxima.append(f"{where}: the DTO refused its own maxima: {problem['errors']}")
        for field, body in _one_past(route.body, limits_app.ids):
            status, problem = await _send(limits_app, route, body)
            if status != 400 or not _body_refused(problem):
                accepted_overflows.append(f"{where} {field} one past its maximum -> {status}: {problem}")
    assert len(routes) >= 40, routes
    assert (server_errors, rejected_maxima, accepted_overflows) == ([], [], [])
