"""Settings of the alerts process (env VIGIE_ALERTS_*)."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict

from core.bus import ConsumerSpec


class AlertsSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VIGIE_ALERTS_", extra="ignore")

    # Prometheus metrics on their own listener (host:port, port 0: any free one); empty: not served.
    metrics_address: str = "127.0.0.1:9102"
    consumer_batch: int = 256
    # Batches of detections handled at once: one's database round trips overlap the next one's.
    inflight_batches: int = 1
    relay_batch: int = 256
    timer_poll_s: float = 0.5
    durable: str = "alerts-engine"
    push_durable: str = "alerts-escalation"
    # Prefix of the durable consumers of the recorder's clip events (one per event type).
    clip_durable: str = "alerts-clips"


def detections_consumer(own: AlertsSettings) -> ConsumerSpec:
    """The engine's durable on DETECTIONS, shared by every copy of the alerts process."""
    return ConsumerSpec("DETECTIONS", own.durable, "detections.>", batch=own.consumer_batch,
                        inflight_batches=own.inflight_batches, max_ack_pending=4 * own.consumer_batch)


def escalation_consumer(own: AlertsSettings) -> ConsumerSpec:
    """The escalation timers' durable on PUSH."""
    return ConsumerSpec("PUSH", own.push_durable, "push.>")
