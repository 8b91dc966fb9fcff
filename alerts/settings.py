"""Settings of the alerts process (env VIGIE_ALERTS_*)."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class AlertsSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VIGIE_ALERTS_", extra="ignore")

    metrics_port: int = 9102  # 0: no /metrics endpoint (tests run several processes)
    consumer_batch: int = 256
    # Batches of detections handled at once: one's database round trips overlap the next one's.
    inflight_batches: int = 1
    relay_batch: int = 256
    timer_poll_s: float = 0.5
    durable: str = "alerts-engine"
    push_durable: str = "alerts-escalation"
    # Prefix of the durable consumers of the recorder's clip events (one per event type).
    clip_durable: str = "alerts-clips"
