"""Settings of the push process, read from VIGIE_PUSH_* environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

from core.bus import ConsumerSpec
from core.settings import PROJECT_ROOT


class PushSettings(BaseSettings):
    """Production values by default; the local FCM endpoint changes only `fcm_base_url` (its service-account JSON
    already names its own token_uri)."""

    model_config = SettingsConfigDict(env_prefix="VIGIE_PUSH_", extra="ignore")

    # A Google service-account JSON with the firebase.messaging scope (its project_id is the FCM project).
    service_account_file: Path = PROJECT_ROOT / "var" / "push" / "service-account.json"
    fcm_base_url: str = "https://fcm.googleapis.com"
    http_timeout_s: int = 10
    # firebase-admin retries 500/503 itself (4 times, up to 7.5 s, invisible to us). We retry durably instead:
    # every attempt recorded, Retry-After honoured, and no request held for seconds inside the SDK.
    sdk_max_retries: int = 0
    # Our own backoff between attempts of one delivery (a Retry-After from FCM takes precedence when longer).
    backoff_s: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0)
    max_attempts: int = 8
    # A device without a heartbeat for this long is flagged stale (still sent to, but not counted as reachable).
    stale_after_s: int = 900
    retry_poll_s: float = 0.2
    outbox_poll_s: float = 0.1
    batch_size: int = 500
    # Prometheus metrics on their own listener (host:port, port 0: any free one); empty: not served.
    metrics_address: str = "127.0.0.1:9105"
    # `python -m mobile_push` starts the project's local FCM endpoint on this port first (demo only).
    local_endpoint_port: int | None = None


def orders_consumer() -> ConsumerSpec:
    """The dispatchers' durable on ALERTS, shared by every copy: a few orders at a time, each fanning out to a whole
    force in one FCM batch already."""
    return ConsumerSpec("ALERTS", "mobile_push", "alerts.>", batch=8)
