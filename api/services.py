"""The services the HTTP layer calls, each built once per process at start (the API's composition root holds them)."""

from __future__ import annotations

from dataclasses import dataclass, field

from alerts.service import AlertService
from billing.service import BillingService
from core.bus import Bus
from core.db import Database
from core.objectstore import ObjectStore
from core.settings import Settings
from dvr.camera_wall import CameraWallService
from dvr.service import EvidenceService
from health.commune import CommuneDashboardService
from health.service import HealthService
from identity.accounts import AccountService
from identity.authorization import AuthorizationService
from identity.enrolment import EnrolmentService
from identity.federation import FederationService
from identity.oidc import OidcClient
from identity.sessions import SessionService
from inference.service import DetectionService
from journal.desk.service import AuditService
from journal.image_accesses import ImageAccessService
from journal.service import JournalService
from live.service import LiveService
from mobile_push.service import PushService
from tenants.authorisations import AuthorisationService
from tenants.cameras import CameraService
from tenants.networks import CameraNetworkService
from tenants.service import TenancyService


@dataclass
class Services:
    settings: Settings
    db: Database
    sessions: SessionService
    accounts: AccountService
    enrolment: EnrolmentService
    authorization: AuthorizationService
    federation: FederationService
    tenancy: TenancyService
    cameras: CameraService
    camera_networks: CameraNetworkService
    authorisations: AuthorisationService
    journal: JournalService
    alerts: AlertService
    evidence: EvidenceService
    camera_wall: CameraWallService
    live: LiveService
    detection: DetectionService
    push: PushService
    billing: BillingService
    health: HealthService
    commune_dashboard: CommuneDashboardService
    image_accesses: ImageAccessService
    store: ObjectStore
    oidc: OidcClient | None
    bus: Bus | None = None
    # Stateless: it works on the database and the store given by the handler.
    audit: AuditService = field(default_factory=AuditService)
