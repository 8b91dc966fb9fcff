"""Live gateway settings read from VIGIE_LIVE_* environment variables, the ticket key shared with the API among them."""

from __future__ import annotations

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.settings import is_development

# Public, so refused outside dev and test: with it anyone could mint tickets for any camera.
DEV_TICKET_KEY = "vigie-dev-live-ticket-key-not-for-production"


class LiveSettings(BaseSettings):
    """Where the gateway listens, how long tickets live, how many viewers a camera takes, how upstreams reconnect."""

    model_config = SettingsConfigDict(env_prefix="VIGIE_LIVE_", extra="ignore", hide_input_in_errors=True)

    # Signs viewing tickets (HMAC-SHA256): the API and the gateway hold the same value (VIGIE_LIVE_TICKET_KEY).
    ticket_key: SecretStr = SecretStr(DEV_TICKET_KEY)
    # The platform's environment (VIGIE_ENVIRONMENT, as in core.settings).
    environment: str = Field(default="dev", validation_alias="VIGIE_ENVIRONMENT")

    host: str = "127.0.0.1"
    port: int = 8010
    # The address browsers reach the gateway at (behind a TLS proxy in production: wss://…); the API hands it out.
    public_url: str = "ws://127.0.0.1:8010"
    # Prometheus metrics on their own listener (host:port), never on the public port; empty: not served.
    metrics_address: str = "127.0.0.1:9110"
    # Origins whose pages may open a socket (the console's); empty accepts any, since a ticket is needed anyway.
    allowed_origins: list[str] = Field(default_factory=list)
    # A ticket must be presented this soon after it is issued (at most 60 s: it is a bearer credential).
    ticket_ttl_s: int = Field(default=30, ge=5, le=60)
    # A connected socket that has not sent its ticket within this long is closed.
    ticket_wait_s: float = 5.0
    # Viewers of one camera (main and sub together) on one gateway; the next one is refused.
    viewer_cap: int = Field(default=8, ge=1)
    # The upstream ffmpeg keeps running this long after its last viewer left (a tile re-opened keeps its session).
    linger_s: float = 3.0
    ffmpeg: str = "ffmpeg"
    # RTSP socket timeout: ffmpeg gives up on a silent camera after this long.
    rtsp_timeout_s: float = 4.0
    # No byte from ffmpeg for this long (more than the camera's keyframe interval) means the stream stalled.
    stall_after_s: float = 8.0
    # Reconnect: capped exponential backoff with full jitter, reset after a run this long.
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 5.0
    stable_after_s: float = 30.0
    # Longest fragment ffmpeg writes (it also cuts at every keyframe): a frame waits in ffmpeg until its fragment is
    # cut, so this bounds what the fragmenting adds to the live view's delay.
    fragment_ms: int = Field(default=100, ge=10, le=2000)
    # Fragments queued for a slow viewer before the oldest are dropped (50 of 100 ms: about 5 s behind the camera).
    viewer_queue_fragments: int = Field(default=50, ge=1)
    # How often an open viewing re-checks its session (revoked, expired, habilitation lapsed) and marks itself alive.
    heartbeat_s: float = 30.0
    # Keyframe interval of the transcode profile (cameras with live_transcode set), in seconds.
    transcode_gop_s: float = 1.0
    db_pool_max: int = 4

    @model_validator(mode="after")
    def _no_development_secret_in_production(self) -> LiveSettings:
        if not is_development(self.environment) and self.ticket_key.get_secret_value() == DEV_TICKET_KEY:
            raise ValueError(f"environment {self.environment!r} refuses the development default for "
                             "VIGIE_LIVE_TICKET_KEY: set it (`vigie secrets generate` prints a fresh value)")
        return self
