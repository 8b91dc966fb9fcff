"""The production FCM path (service-account JSON → firebase-admin → HTTP) against the project's local endpoint."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from prometheus_client import REGISTRY

from mobile_push.fcm import FcmSender
from mobile_push.fcm_endpoint import FAULTS, Fault, FcmEndpoint
from mobile_push.model import FcmError, PushMessage
from mobile_push.reference_client import new_fcm_token

pytestmark = pytest.mark.integration


def push(token: str, platform: str = "android", ttl_s: int = 60) -> PushMessage:
    return PushMessage(
        delivery_id=uuid.uuid4(), token=token, platform=platform,  # type: ignore[arg-type]
        alert_id=uuid.uuid4(), ttl_s=ttl_s, expires_at_epoch=int(time.time()) + ttl_s,
    )


async def test_messages_are_content_free_urgent_and_authorised_by_the_service_account(
    clean_fcm: FcmEndpoint, sender: FcmSender
) -> None:
    grants = clean_fcm.state.token_grants
    android, ios = push(new_fcm_token(), ttl_s=45), push(new_fcm_token(), "ios", ttl_s=45)
    outcomes = await sender.send([android, ios])
    assert [o.error for o in outcomes] == [None, None]
    assert all(o.message_name and o.message_name.startswith("projects/vigie-test/messages/") for o in outcomes)
    # One JWT-bearer grant for both sends: the access token is cached by google-auth.
    assert clean_fcm.state.token_grants == grants + 1
    bodies: dict[str | None, Any] = {r.token: r.body["message"] for r in clean_fcm.state.received}
    sent_android, sent_ios = bodies[android.token], bodies[ios.token]
    for message, sent in ((sent_android, android), (sent_ios, ios)):
        assert message["data"] == {"alert_id": str(sent.alert_id), "v": "1"}
        assert "notification" not in message
        assert "collapse_key" not in str(message)
        assert "apns-collapse-id" not in str(message)
    assert sent_android["android"] == {"priority": "high", "ttl": "45s"}
    headers = sent_ios["apns"]["headers"]
    assert headers["apns-priority"] == "10"
    assert headers["apns-push-type"] == "alert"
    assert abs(int(headers["apns-expiration"]) - (time.time() + 45)) < 5
    # The iOS alert is a fixed localisation key: no text about the alarm.
    assert sent_ios["apns"]["payload"]["aps"]["alert"] == {"loc-key": "VIGIE_NEW_DISPATCH"}
    request = clean_fcm.state.received[0]
    assert request.headers["authorization"].startswith("Bearer ya29.local-")
    assert request.headers["x-goog-api-format-version"] == "2"
    assert clean_fcm.state.inbox[android.token][0]["message"]["data"]["alert_id"] == str(android.alert_id)


@pytest.mark.parametrize(
    ("kind", "expected", "status"),
    [
        ("unregistered", FcmError.UNREGISTERED, 404),
        ("invalid_token", FcmError.INVALID_TOKEN, 400),
        ("invalid_payload", FcmError.INVALID_ARGUMENT, 400),
        ("sender_id_mismatch", FcmError.SENDER_ID_MISMATCH, 403),
        ("quota_exceeded", FcmError.QUOTA_EXCEEDED, 429),
        ("internal", FcmError.INTERNAL, 500),
        ("unavailable", FcmError.UNAVAILABLE, 503),
        ("third_party_auth", FcmError.THIRD_PARTY_AUTH, 401),
    ],
)
async def test_every_fcm_error_class_is_recognised(
    clean_fcm: FcmEndpoint, sender: FcmSender, kind: str, expected: FcmError, status: int
) -> None:
    assert kind in FAULTS
    token, healthy = new_fcm_token(), new_fcm_token()
    retry_after = 3 if kind in ("quota_exceeded", "unavailable") else None
    # A 401 makes google-auth refresh the token and try again: the fault must outlast that retry.
    clean_fcm.state.faults[token].append(Fault(kind, times=-1, retry_after_s=retry_after))
    failed, ok = await sender.send([push(token), push(healthy)])
    assert failed.error is expected
    assert failed.http_status == status
    assert failed.retry_after_s == retry_after
    assert ok.error is None
    # Our own retries replace the SDK's: one request per message (three for a 401: google-auth refreshes twice).
    sent = [r for r in clean_fcm.state.received if r.token == token]
    assert len(sent) == (3 if kind == "third_party_auth" else 1)
    assert not clean_fcm.state.inbox.get(token)


async def test_refused_service_account_is_a_credentials_error_for_the_whole_batch(
    clean_fcm: FcmEndpoint, sender: FcmSender
) -> None:
    clean_fcm.state.refuse_credentials = True
    refused_before = _sample("vigie_push_send_outcomes_total", outcome="CREDENTIALS")
    batches_before = _sample("vigie_push_send_seconds_count")
    outcomes = await sender.send([push(new_fcm_token()), push(new_fcm_token())])
    assert {o.error for o in outcomes} == {FcmError.CREDENTIALS}
    # What the push-credentials alert watches: two messages refused, one batch timed.
    assert _sample("vigie_push_send_outcomes_total", outcome="CREDENTIALS") == refused_before + 2
    assert _sample("vigie_push_send_seconds_count") == batches_before + 1
    assert "invalid_grant" in outcomes[0].detail
    assert clean_fcm.state.received == []  # nothing reached messages:send without a token


async def test_injected_latency_delays_the_answer(clean_fcm: FcmEndpoint, sender: FcmSender) -> None:
    token = new_fcm_token()
    clean_fcm.state.faults[token].append(Fault(None, times=1, latency_ms=300))
    started = time.perf_counter()
    (outcome,) = await sender.send([push(token)])
    assert outcome.error is None
    assert time.perf_counter() - started >= 0.3


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0
