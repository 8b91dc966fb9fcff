"""The HTTP application: routes, authentication, errors, OpenAPI, and the services it calls; its metrics listener."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar
from litestar.middleware.base import DefineMiddleware

import api.routes
import core.metrics
from alerts.service import AlertService
from api.deps import DEPENDENCIES
from api.errors import EXCEPTION_HANDLERS
from api.middleware import RequestContextMiddleware, require_json_body
from api.openapi import document_problems, openapi_config
from api.proxies import TrustedProxyMiddleware
from api.security import PUBLIC_PATHS, BearerAuthentication
from api.services import Services
from billing.service import BillingService
from core.bus import Bus
from core.crypto import SecretBox
from core.db import Database, open_database
from core.errors import Unavailable
from core.logging import get_logger
from core.objectstore_settings import ObjectStoreSettings, open_object_store
from core.settings import Settings
from dvr.camera_wall import CameraWallService
from dvr.service import EvidenceService
from dvr.settings import DvrSettings
from health.commune import CommuneDashboardService
from health.service import HealthService
from identity.accounts import AccountService
from identity.authorization import AuthorizationService
from identity.enrolment import EnrolmentService
from identity.federation import FederationService
from identity.keys import KeyRing
from identity.oidc import OidcClient
from identity.repository import IdentityRepository
from identity.sessions import SessionService
from inference.service import DetectionService, ModelLabels
from inference.settings import InferenceSettings
from journal.image_accesses import ImageAccessService
from journal.service import JournalService
from live.service import LiveService
from live.settings import LiveSettings
from live.tickets import TicketSigner
from mobile_push.service import PushService
from tenants.authorisations import AuthorisationService
from tenants.cameras import CameraService
from tenants.networks import CameraNetworkService
from tenants.service import TenancyService

log = get_logger(__name__)
VERSION = "0.1.0"


def serve_metrics(address: str) -> tuple[str, int] | None:
    """The API's Prometheus listener ("host:port"), never on its public port: what the platform measures (routes,
    rates, dead letters) is for its operators. Empty: not served. Returns where it listens."""
    return core.metrics.serve_metrics(address, process="api")


def discover_routes() -> list[Any]:
    """Every module of api.routes exports ROUTES; a new resource module is served (and covered by the
    cross-tenant matrix, which reads the route table) without touching this file."""
    found: list[Any] = []
    for module in sorted(m.name for m in pkgutil.iter_modules(api.routes.__path__)):
        found.extend(importlib.import_module(f"api.routes.{module}").ROUTES)
    return found


def _live_service(db: Database, journal: JournalService) -> LiveService:
    live = LiveSettings()
    return LiveService(db=db, signer=TicketSigner(live.ticket_key.get_secret_value()), settings=live, journal=journal)


async def build_services(settings: Settings) -> Services:
    """Every service the handlers call, built once: handlers only translate HTTP to a use case."""
    # The runtime role only: sign-in reads across tenants through the sign-in functions (migration 0052), so the API
    # holds no department DSN and cannot bypass row-level security.
    db = await open_database(
        settings.database.app_dsn, app_pool_size=(settings.database.pool_min_size, settings.database.pool_max_size)
    )
    secrets = SecretBox(settings.data_key.get_secret_value())
    journal = JournalService()
    repository = IdentityRepository()
    sessions = SessionService(db, secrets, settings.auth, KeyRing(secrets, repository), journal, repository)
    await sessions.load_keys()
    oidc = OidcClient(settings.oidc, db, sessions.throttle) if settings.oidc.issuer else None
    store = open_object_store(ObjectStoreSettings())
    try:
        bus: Bus | None = await Bus.connect_as(settings, "api", name="vigie-api", connect_timeout_s=2)
    except Unavailable as exc:
        log.warning("api.nats_unavailable", error=str(exc))
        bus = None
    return Services(
        settings=settings,
        db=db,
        sessions=sessions,
        accounts=AccountService(db, secrets, settings.auth, sessions.principals, journal, repository),
        enrolment=EnrolmentService(
            db, secrets, settings.auth, sessions.principals, journal, repository, throttle=sessions.throttle,
            console_url=settings.auth.enrolment_console(settings.api.public_url),
        ),
        authorization=AuthorizationService(db, sessions, public_url=settings.api.public_url),
        federation=FederationService(db, sessions, journal, repository),
        tenancy=TenancyService(db, journal),
        cameras=CameraService(db, secrets, journal),
        camera_networks=CameraNetworkService(db, journal),
        authorisations=AuthorisationService(db, store, journal),
        journal=journal,
        alerts=AlertService(db, journal, store=store),
        evidence=EvidenceService(db=db, store=store, settings=DvrSettings(), secret_box=secrets, journal=journal),
        camera_wall=CameraWallService(db, DvrSettings()),
        # Live tickets only: the API never opens a camera's credentials, the gateway does.
        live=_live_service(db, journal),
        # The detector's label map is read here, once; without an installed model, rules answer 503 until it is.
        detection=DetectionService(db, ModelLabels(InferenceSettings().labels_file), journal),
        push=PushService(db, journal, secrets),
        # Documents render in their own processes (weasyprint holds the GIL): one, so requests keep flowing.
        billing=BillingService(db, journal, store, render_workers=1),
        health=HealthService(db, journal),
        commune_dashboard=CommuneDashboardService(db),
        image_accesses=ImageAccessService(db),
        store=store,
        oidc=oidc,
        bus=bus,
    )


def create_app(settings: Settings, services: Services | None = None) -> Litestar:
    """The ASGI app; `services` may be given by a test that built them itself."""

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        owned = services is None
        app.state.services = services if services is not None else await build_services(settings)
        document_problems(app, PUBLIC_PATHS)
        try:
            yield
        finally:
            if owned:
                app.state.services.billing.close()
                if app.state.services.bus is not None:
                    await app.state.services.bus.close()
                await app.state.services.db.close()

    return Litestar(
        route_handlers=discover_routes(),
        dependencies=DEPENDENCIES,
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=[
            # First: every later consumer of the client address (logs, sign-in throttling) sees the real client.
            DefineMiddleware(TrustedProxyMiddleware, networks=settings.api.trusted_proxies),
            RequestContextMiddleware,
            DefineMiddleware(BearerAuthentication, exclude=PUBLIC_PATHS),
        ],
        before_request=require_json_body,
        openapi_config=openapi_config(VERSION),
        lifespan=[lifespan],
        request_max_body_size=settings.api.max_body_bytes,
        debug=False,
    )
