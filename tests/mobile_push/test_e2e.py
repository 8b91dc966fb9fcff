"""End to end over the bus: detection → alert → operator verifies and dispatches → push on the local FCM endpoint →
the reference client fetches and acknowledges → the operator sees it; an officer who never answers is escalated."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

import httpx2
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from alerts.engine import AlertEngine
from alerts.escalation import EscalationDispatcher
from alerts.events import ALERT_EVENTS, DispatchOrdered, EscalationRaised
from alerts.repository import ALERT_OUTBOX
from alerts.rules import RECEIPT_TIMEOUT_S
from cli.seed import DEMO_PASSWORD, SeedResult
from core.bus import Bus, ConsumerSpec
from core.db import Database
from core.events import EventCodec
from core.outbox import OutboxRelay
from inference.events import RuleTriggered
from mobile_push.dispatcher import PushDispatcher
from mobile_push.events import PUSH_EVENTS
from mobile_push.fcm_endpoint import FcmEndpoint
from mobile_push.reference_client import ReferenceClient, SignInPage
from mobile_push.repository import PUSH_OUTBOX
from mobile_push.settings import PushSettings
from tests.api.conftest import Actor
from tests.litestar_transport import TestClientTransport

pytestmark = pytest.mark.integration
OPERATOR, PM, GENDARME = "operateur1@valdoise.demo", "pm@marines.demo", "gendarme@marines.demo"


@pytest.fixture
async def platform(
    bus: Bus, database: Database, dispatcher: PushDispatcher, push_settings: PushSettings,
) -> AsyncIterator[None]:
    """The alerts relay and escalation timers, and the push dispatcher and relay, wired through NATS as in
    production (each in its own task here instead of its own process)."""
    stop = asyncio.Event()
    escalation = EscalationDispatcher(database)
    tag = uuid.uuid4().hex[:6]
    # Fresh durables that start at new messages: orders left on the stream by earlier tests are not this test's.
    consumers = (("PUSH", f"alerts-e2e-{tag}", "push.>"), ("ALERTS", f"push-e2e-{tag}", "alerts.>"))
    # What earlier tests left unsent in the outboxes goes out first: relayed later, it would be new to these durables
    # and compete with this test's own events.
    for outbox in (ALERT_OUTBOX, PUSH_OUTBOX):
        relay = OutboxRelay(database, bus, outbox)
        while await relay.relay_once():
            pass
    for stream, durable, subject in consumers:
        await bus.js.add_consumer(stream, ConsumerConfig(
            durable_name=durable, ack_policy=AckPolicy.EXPLICIT, filter_subject=subject,
            deliver_policy=DeliverPolicy.NEW, max_deliver=6, ack_wait=30))
    tasks = [
        asyncio.create_task(OutboxRelay(database, bus, ALERT_OUTBOX).run(stop)),
        asyncio.create_task(escalation.run(stop, 0.2)),
        asyncio.create_task(bus.consume(ConsumerSpec("PUSH", f"alerts-e2e-{tag}", "push.>"),
                                        EventCodec(*PUSH_EVENTS), escalation.handle_push, stop=stop)),
        asyncio.create_task(bus.consume(ConsumerSpec("ALERTS", f"push-e2e-{tag}", "alerts.>"),
                                        EventCodec(*ALERT_EVENTS), dispatcher.handle, stop=stop)),
        asyncio.create_task(dispatcher.run_retries(stop)),
        asyncio.create_task(OutboxRelay(database, bus, PUSH_OUTBOX, idle_s=push_settings.outbox_poll_s).run(stop)),
    ]
    yield
    stop.set()
    for task in tasks:
        # A handler still sending when the test ends is cancelled by the timeout: that is the intended stop.
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(task, 10)


async def test_detection_to_acknowledgement_and_escalation(
    platform: None, alerts_client: AsyncTestClient[Litestar], people: dict[str, Actor], demo: SeedResult,
    clean_fcm: FcmEndpoint, database: Database, bus: Bus,
) -> None:
    api = alerts_client
    async with httpx2.AsyncClient(base_url=clean_fcm.url) as fcm_http:
        pm = ReferenceClient.connect(str(api.base_url), fcm_http, transport=TestClientTransport(api))
        gendarme = ReferenceClient.connect(str(api.base_url), fcm_http, transport=TestClientTransport(api),
                                           platform="ios")
        for client, email in ((pm, PM), (gendarme, GENDARME)):
            async with client.browser() as browser:
                await client.sign_in(SignInPage(browser, email, DEMO_PASSWORD))
            await client.register()
        try:
            # From now on: the stream's history of earlier tests is not this test's to read through.
            watched = await bus.js.subscribe(f"alerts.{demo.tenants['marines']}.>", stream="ALERTS",
                                             ordered_consumer=True, deliver_policy=DeliverPolicy.NEW)

            # A simulated camera's event becomes an alert; the operator verifies it and dispatches two forces.
            alert_id = await AlertEngine(database).handle(RuleTriggered(
                tenant_id=demo.tenants["marines"], camera_id=demo.cameras["c7"], rule_id=uuid.uuid4(),
                rule_type="person_on_ground", legal_event_type="person_on_ground", zone_id=None, track_ids=(41,),
                boxes=((0.1, 0.1, 0.3, 0.6),), labels=("Person",), scores=(0.92,), detail="e2e",
                snapshot_key="snapshots/e2e.jpg"))
            assert alert_id is not None
            operator = people[OPERATOR].headers
            assert (await api.post(f"/alerts/{alert_id}/claim", headers=operator)).status_code == 200
            verified = await api.post(f"/alerts/{alert_id}/verify", headers=operator,
                                      json={"media": "snapshot", "motive": "levée de doute e2e"})
            assert verified.status_code == 200, verified.text
            dispatched = await api.post(f"/alerts/{alert_id}/dispatch", headers=operator, json={
                "force_ids": [str(demo.forces["pm_marines"]), str(demo.forces["gn_marines"])], "ttl_s": 120})
            assert dispatched.status_code == 200, dispatched.text

            # The push reaches the local FCM endpoint; the phone fetches the alert and acknowledges.
            handled: list[str] = []
            deadline = asyncio.get_running_loop().time() + 20
            while str(alert_id) not in handled and asyncio.get_running_loop().time() < deadline:
                handled += [d["alert_id"] for d in await pm.handle_pushes(wait_s=2, acknowledge=True)]
            assert str(alert_id) in handled

            # The operator sees `acknowledged` in the alerts queue's responders view.
            statuses: dict[str, str] = {}
            while asyncio.get_running_loop().time() < deadline + 10:
                responders = (await api.get(f"/alerts/{alert_id}/responders", headers=operator)).json()
                statuses = {d["force_kind"]: d["status"] for d in responders["dispatches"]}
                if statuses.get("police_municipale") == "acknowledged":
                    break
                await asyncio.sleep(0.2)
            assert statuses.get("police_municipale") == "acknowledged", responders

            # The gendarme's phone got the push but never answers: the receipt timer escalates it within timer + 5 s.
            assert await gendarme.receive(wait_s=5)
            codec = EventCodec(*ALERT_EVENTS)
            ordered_at, escalated_at = None, None
            limit = asyncio.get_running_loop().time() + RECEIPT_TIMEOUT_S + 15
            while escalated_at is None and asyncio.get_running_loop().time() < limit:
                with contextlib.suppress(TimeoutError):
                    event = codec.decode((await watched.next_msg(timeout=1)).data)
                    if isinstance(event, DispatchOrdered) and event.force_kind == "gendarmerie" \
                            and event.escalation_level == 0 and event.alert_id == alert_id:
                        ordered_at = event.occurred_at
                    if isinstance(event, EscalationRaised) and event.alert_id == alert_id:
                        escalated_at = event.occurred_at
            await watched.unsubscribe()
            assert ordered_at is not None
            assert escalated_at is not None
            assert (escalated_at - ordered_at).total_seconds() <= RECEIPT_TIMEOUT_S + 5
        finally:
            # Removed whatever happened: a phone left registered would receive the next tests' orders.
            for client in (pm, gendarme):
                await client.remove()
