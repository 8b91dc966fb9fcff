"""FCM through firebase-admin: content-free messages sent with the async batch API, errors mapped to FcmError."""

from __future__ import annotations

import asyncio
import email.utils
import time
import warnings
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import firebase_admin  # type: ignore[import-untyped]
import google.auth.exceptions
from firebase_admin import credentials, exceptions, messaging
from firebase_admin._http_client import HttpxAsyncClient  # type: ignore[import-untyped]
from firebase_admin._retry import HttpxRetry  # type: ignore[import-untyped]
from prometheus_client import Counter, Histogram

from core.ids import new_id
from mobile_push.model import FcmError, PushMessage, SendOutcome

# iOS: the alarm must show even when the app is suspended, which APNs allows only for alert pushes at priority
# 10 (data-only pushes must go at priority 5 and may be throttled). The alert text is a fixed localisation key,
# resolved on the phone: nothing about the alarm crosses Google's or Apple's servers.
IOS_ALERT_KEY = "VIGIE_NEW_DISPATCH"
SUPPORTED_VERSION = "7.7."

SEND_SECONDS = Histogram("vigie_push_send_seconds", "Time FCM took to answer one batch of up to 500 messages",
                         buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0))
# OK, or an FcmError: UNREGISTERED, INVALID_TOKEN and SENDER_ID_MISMATCH are the devices' token errors, CREDENTIALS
# is the platform's own service account refused.
OUTCOMES = Counter("vigie_push_send_outcomes_total", "Messages sent to FCM, by outcome", ["outcome"])


def build_message(push: PushMessage) -> messaging.Message:
    """The only payload that leaves the platform: the opaque alert id. No collapse key, so distinct alarms never
    replace each other on the device."""
    data = {"alert_id": str(push.alert_id), "v": "1"}
    android = messaging.AndroidConfig(priority="high", ttl=push.ttl_s)
    apns = messaging.APNSConfig(
        headers={
            "apns-priority": "10",
            "apns-push-type": "alert",
            # APNs counts the TTL as an absolute expiry (epoch seconds); 0 would mean "once, now or never".
            "apns-expiration": str(push.expires_at_epoch),
        },
        payload=messaging.APNSPayload(
            aps=messaging.Aps(alert=messaging.ApsAlert(loc_key=IOS_ALERT_KEY), mutable_content=True, sound="default")
        ),
    )
    # 7.7 deprecates `token` in favour of Firebase Installation ids, but the app's FCM SDK hands us a registration
    # token (getToken), which is what the v1 `token` field means; the warning is about a migration not made yet.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Message.token is deprecated", DeprecationWarning)
        if push.platform == "ios":
            return messaging.Message(token=push.token, data=data, apns=apns)
        return messaging.Message(token=push.token, data=data, android=android)


def _retry_after(error: exceptions.FirebaseError) -> float | None:
    response = getattr(error, "http_response", None)
    value = None if response is None else response.headers.get("retry-after")
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    parsed = email.utils.parsedate_to_datetime(value) if value else None
    return None if parsed is None else max(0.0, (parsed - datetime.now(UTC)).total_seconds())


def classify(error: BaseException) -> SendOutcome:
    """firebase-admin's exception for one message → our error code (see notes: the 7.7 error table)."""
    cause = getattr(error, "cause", None)
    if isinstance(error, google.auth.exceptions.GoogleAuthError) or isinstance(
        cause, google.auth.exceptions.GoogleAuthError
    ):
        # firebase-admin wraps a refused token grant (RefreshError) in an UnknownError per message.
        return SendOutcome(error=FcmError.CREDENTIALS, detail=f"token grant refused: {error}"[:500])
    if not isinstance(error, exceptions.FirebaseError):
        return SendOutcome(error=FcmError.UNKNOWN, detail=repr(error)[:500])
    response = getattr(error, "http_response", None)
    status = None if response is None else int(response.status_code)
    detail = str(error)[:500]
    code: FcmError
    if isinstance(error, messaging.UnregisteredError):
        code = FcmError.UNREGISTERED
    elif isinstance(error, messaging.SenderIdMismatchError):
        code = FcmError.SENDER_ID_MISMATCH
    elif isinstance(error, messaging.ThirdPartyAuthError):
        code = FcmError.THIRD_PARTY_AUTH
    elif isinstance(error, messaging.QuotaExceededError | exceptions.ResourceExhaustedError):
        code = FcmError.QUOTA_EXCEEDED
    elif isinstance(error, exceptions.InvalidArgumentError):
        # INVALID_ARGUMENT covers both a bad token and a bad payload; only the former is the device's fault.
        code = FcmError.INVALID_TOKEN if "registration token" in detail.lower() else FcmError.INVALID_ARGUMENT
    elif isinstance(error, exceptions.UnavailableError):
        code = FcmError.UNAVAILABLE
    elif isinstance(error, exceptions.InternalError):
        code = FcmError.INTERNAL
    elif isinstance(error, exceptions.DeadlineExceededError):
        code = FcmError.TIMEOUT
    elif isinstance(error, exceptions.UnauthenticatedError | exceptions.PermissionDeniedError):
        code = FcmError.CREDENTIALS
    else:
        code = FcmError.UNKNOWN
    return SendOutcome(error=code, http_status=status, retry_after_s=_retry_after(error), detail=detail)


def _point_at(app: firebase_admin.App, base_url: str, *, timeout_s: int, sdk_max_retries: int) -> None:
    """firebase-admin has no setting for the FCM endpoint nor for its async retries: both live on the messaging
    service (private attributes of 7.7.x, hence the version pin and the check below)."""
    service: Any = messaging._get_messaging_service(app)
    service._fcm_url = f"{base_url.rstrip('/')}/v1/projects/{service._project_id}/messages:send"
    service._fcm_topic_url = f"{base_url.rstrip('/')}/v1/projects/{service._project_id}/registrations"
    service._async_client = HttpxAsyncClient(
        credential=service._credential,
        timeout=timeout_s,
        retry_config=HttpxRetry(max_retries=sdk_max_retries, status_forcelist=[500, 503], backoff_factor=0.5),
    )


class FcmSender:
    """One firebase-admin app built from a service-account JSON, sending batches of up to 500 messages."""

    def __init__(
        self,
        service_account: dict[str, Any],
        *,
        base_url: str = "https://fcm.googleapis.com",
        timeout_s: int = 10,
        sdk_max_retries: int = 0,
    ) -> None:
        if not firebase_admin.__version__.startswith(SUPPORTED_VERSION):
            raise RuntimeError(f"firebase-admin {firebase_admin.__version__} is not the pinned {SUPPORTED_VERSION}*")
        self.project_id = str(service_account["project_id"])
        # Certificate builds a google-auth service-account credential: it signs a JWT and trades it at the
        # account's token_uri for an access token, cached until it expires.
        self._app = firebase_admin.initialize_app(
            credentials.Certificate(service_account),
            {"projectId": self.project_id, "httpTimeout": timeout_s},
            name=f"vigie-push-{new_id()}",
        )
        _point_at(self._app, base_url, timeout_s=timeout_s, sdk_max_retries=sdk_max_retries)

    async def send(self, pushes: Sequence[PushMessage]) -> list[SendOutcome]:
        """One outcome per message, in order; never raises for what FCM answers."""
        started = time.perf_counter()
        outcomes = await self._send(pushes)
        SEND_SECONDS.observe(time.perf_counter() - started)
        for outcome in outcomes:
            OUTCOMES.labels(outcome.error.value if outcome.error is not None else "OK").inc()
        return outcomes

    async def _send(self, pushes: Sequence[PushMessage]) -> list[SendOutcome]:
        outcomes: list[SendOutcome] = []
        for start in range(0, len(pushes), 500):
            chunk = list(pushes[start : start + 500])
            try:
                batch = await messaging.send_each_async([build_message(p) for p in chunk], app=self._app)
            except (google.auth.exceptions.GoogleAuthError, exceptions.FirebaseError) as exc:
                # The token grant happens before any message goes: every message of the batch shares the failure.
                outcomes.extend(classify(exc) for _ in chunk)
                continue
            for response in batch.responses:
                if response.success:
                    outcomes.append(SendOutcome(message_name=response.message_id, http_status=200))
                else:
                    outcomes.append(classify(response.exception))
        return outcomes

    async def close(self) -> None:
        service: Any = messaging._get_messaging_service(self._app)
        await service._async_client.aclose()
        # delete_app closes the service with asyncio.run(), which cannot run inside this loop: give it a thread.
        await asyncio.to_thread(firebase_admin.delete_app, self._app)


def now_epoch() -> int:
    return int(time.time())
