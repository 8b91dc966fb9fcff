"""Settings of the health watch: when an outage opens a maintenance ticket, and the SMTP relay that mails it."""

from __future__ import annotations

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class HealthSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VIGIE_HEALTH_", extra="ignore")

    # A camera out of order this long opens a maintenance ticket.
    ticket_after_s: float = 900.0
    # The SMTP relay (none: tickets are opened and shown in the console, not mailed).
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_starttls: bool = False
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    mail_from: str = "vigie-maintenance@localhost"
    smtp_timeout_s: float = 15.0
