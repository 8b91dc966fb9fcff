"""The services the HTTP layer calls, built once per process in the app's lifespan."""

from __future__ import annotations

from dataclasses import dataclass

from core.bus import Bus
from core.db import Database
from core.settings import Settings
from identity.oidc import OidcClient
from identity.service import IdentityService
from journal.service import JournalService
from tenants.service import TenancyService


@dataclass
class Services:
    settings: Settings
    db: Database
    identity: IdentityService
    tenancy: TenancyService
    journal: JournalService
    oidc: OidcClient | None
    bus: Bus | None = None
