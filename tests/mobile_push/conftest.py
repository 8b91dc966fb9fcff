"""Push fixtures: the project's local FCM endpoint with its own service account, the real sender, the dispatcher."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pyotp
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from cli.seed import DEMO_PASSWORD, SeedResult
from core.crypto import SecretBox
from core.db import Database
from core.ports import free_port
from core.settings import Settings
from mobile_push.dispatcher import PushDispatcher
from mobile_push.fcm import FcmSender
from mobile_push.fcm_endpoint import FcmEndpoint, state_for, write_service_account
from mobile_push.settings import PushSettings
from tests.alerts.conftest import alerts_app, alerts_client, alerts_settings, bus, demo  # noqa: F401
from tests.api.conftest import Actor

STAFF = ("operateur1@valdoise.demo",)


@pytest.fixture(scope="session")
def service_account_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("push") / "service-account.json"


@pytest.fixture(scope="session")
def fcm(service_account_file: Path) -> Iterator[FcmEndpoint]:
    """A real HTTP server speaking FCM v1 and the OAuth2 JWT-bearer grant, trusting one generated key."""
    port = free_port()
    account = write_service_account(service_account_file, base_url=f"http://127.0.0.1:{port}", project_id="vigie-test")
    endpoint = FcmEndpoint(state_for(account), port=port).start()
    yield endpoint
    endpoint.stop()


@pytest.fixture
def clean_fcm(fcm: FcmEndpoint) -> FcmEndpoint:
    fcm.state.faults.clear()
    fcm.state.received.clear()
    fcm.state.inbox.clear()
    fcm.state.refuse_credentials = False
    return fcm


@pytest.fixture(scope="session")
def service_account(service_account_file: Path, fcm: FcmEndpoint) -> dict[str, Any]:
    return dict(json.loads(service_account_file.read_text()))


@pytest.fixture(scope="session")
def push_settings(service_account_file: Path, fcm: FcmEndpoint) -> PushSettings:
    # Only the endpoint differs from production, plus short backoffs so that the retry tests stay quick.
    return PushSettings(
        service_account_file=service_account_file,
        fcm_base_url=fcm.url,
        backoff_s=(0.2, 0.4, 0.8),
        max_attempts=4,
        retry_poll_s=0.05,
        outbox_poll_s=0.05,
    )


@pytest.fixture
async def sender(service_account: dict[str, Any], push_settings: PushSettings) -> AsyncIterator[FcmSender]:
    created = FcmSender(service_account, base_url=push_settings.fcm_base_url, timeout_s=5)
    yield created
    await created.close()


@pytest.fixture
def secrets_box(settings: Settings) -> SecretBox:
    return SecretBox(settings.data_key.get_secret_value())


@pytest.fixture
def dispatcher(
    database: Database, sender: FcmSender, secrets_box: SecretBox, push_settings: PushSettings
) -> PushDispatcher:
    return PushDispatcher(database, sender, secrets_box, push_settings)


@pytest.fixture(scope="session")
async def people(alerts_client: AsyncTestClient[Litestar], demo: SeedResult) -> dict[str, Actor]:  # noqa: F811
    """The staff this suite needs. Another suite of the same run may have just spent the current TOTP step of these
    accounts (a code works once), so the next step is offered when the current one is refused (drift of one step)."""
    signed: dict[str, Actor] = {}
    for user in (u for u in demo.users if u.email in STAFF):
        assert user.totp_secret is not None
        totp = pyotp.TOTP(user.totp_secret)
        body: dict[str, Any] = {}
        for code in (totp.now(), totp.at(time.time() + totp.interval)):
            login = await alerts_client.post("/auth/login", json={"email": user.email, "password": DEMO_PASSWORD})
            assert login.status_code == 200, login.text
            response = await alerts_client.post(
                "/auth/login/totp", json={"challenge": login.json()["challenge"], "code": code}
            )
            body = response.json()
            if response.status_code == 200:
                break
        signed[user.email] = Actor(user.role, user.email, body["access_token"], uuid.UUID(body["tenant_id"]))
    return signed
