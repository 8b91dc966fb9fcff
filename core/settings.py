"""Typed settings read from VIGIE_* environment variables (nested with a double underscore)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class DatabaseSettings(BaseModel):
    """Where Postgres is and which roles the platform uses."""

    # Superuser DSN, used only to create the database and the three roles (bootstrap).
    admin_dsn: SecretStr = SecretStr("postgresql://postgres@127.0.0.1:5432/postgres")
    host: str = "127.0.0.1"
    port: int = 5432
    name: str = "vigie"
    owner_role: str = "vigie_owner"
    owner_password: SecretStr = SecretStr("vigie-owner-dev")
    app_role: str = "vigie_app"
    app_password: SecretStr = SecretStr("vigie-app-dev")
    department_role: str = "vigie_department"
    department_password: SecretStr = SecretStr("vigie-department-dev")
    # Owns the sign-in functions (SECURITY DEFINER) through which the API reads memberships and resolves sessions
    # across tenants without the department role; it cannot log in.
    signin_role: str = "vigie_signin"
    pool_min_size: int = 2
    pool_max_size: int = 10
    # When the machine's server is unreachable, start the embedded one (pgserver) under var/.
    embedded_fallback: bool = True

    def dsn_for(self, role: str, password: SecretStr) -> str:
        """DSN for one of the platform roles on the configured database."""
        from urllib.parse import quote

        host = self.host
        if host.startswith("/"):
            return f"postgresql://{quote(role)}:{quote(password.get_secret_value())}@/{self.name}?host={host}"
        return f"postgresql://{quote(role)}:{quote(password.get_secret_value())}@{host}:{self.port}/{self.name}"

    @property
    def owner_dsn(self) -> str:
        return self.dsn_for(self.owner_role, self.owner_password)

    @property
    def app_dsn(self) -> str:
        return self.dsn_for(self.app_role, self.app_password)

    @property
    def department_dsn(self) -> str:
        return self.dsn_for(self.department_role, self.department_password)


class NatsSettings(BaseModel):
    """NATS JetStream connection; `embedded` starts the project's own nats-server."""

    url: str = "nats://127.0.0.1:4333"
    embedded: bool = True
    store_dir: Path = PROJECT_ROOT / "var" / "nats"
    stream_replicas: int = 1
    duplicate_window_s: float = 120.0


class AuthSettings(BaseModel):
    """Token issuing and verification."""

    issuer: str = "https://vigie.local"
    audience: str = "vigie-api"
    access_ttl_s: int = 300
    refresh_ttl_s: int = 12 * 3600
    # Keys older than this are retired from signing; they stay published until tokens signed by them expire.
    signing_key_max_age_s: int = 30 * 86400
    max_failures_before_delay: int = 5
    max_consecutive_failures: int = 100
    login_rate_per_ip_per_minute: int = 20
    totp_issuer: str = "Vigie"


class OidcSettings(BaseModel):
    """An external identity provider (ProConnect, Keycloak); disabled when `issuer` is empty."""

    issuer: str = ""
    client_id: str = ""
    client_secret: SecretStr = SecretStr("")
    redirect_uri: str = ""
    scope: str = "openid email"
    # Only identities whose email is already a local account may sign in; no automatic provisioning.
    leeway_s: int = 5


class ApiSettings(BaseModel):
    """HTTP server."""

    host: str = "127.0.0.1"
    port: int = 8000
    max_body_bytes: int = 1_000_000
    trusted_proxies: list[str] = Field(default_factory=list)
    public_url: str = "http://127.0.0.1:8000"


class Settings(BaseSettings):
    """All settings of the platform; every process reads the same tree."""

    model_config = SettingsConfigDict(env_prefix="VIGIE_", env_nested_delimiter="__", extra="ignore")

    environment: str = "dev"
    department_code: str = "95"
    var_dir: Path = PROJECT_ROOT / "var"
    # 32-byte key (urlsafe base64) protecting secrets at rest: camera credentials, TOTP seeds, signing keys.
    data_key: SecretStr = SecretStr("dmlnaWUtZGV2LWRhdGEta2V5LW5vdC1mb3ItcHJvZCE=")
    log_level: str = "INFO"
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    nats: NatsSettings = Field(default_factory=NatsSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    oidc: OidcSettings = Field(default_factory=OidcSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)

    def child_env(self, **extra: str) -> dict[str, str]:
        """The environment of a child process that reads these settings as resolved here: it connects to the servers
        already running (the embedded ones included) and never starts its own. `extra` adds VIGIE_* variables."""
        db = self.database
        env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIE_")}
        env.update({
            "VIGIE_ENVIRONMENT": self.environment,
            "VIGIE_LOG_LEVEL": self.log_level,
            "VIGIE_VAR_DIR": str(self.var_dir),
            "VIGIE_DATA_KEY": self.data_key.get_secret_value(),
            "VIGIE_DATABASE__NAME": db.name,
            "VIGIE_DATABASE__HOST": db.host,
            "VIGIE_DATABASE__PORT": str(db.port),
            "VIGIE_DATABASE__ADMIN_DSN": db.admin_dsn.get_secret_value(),
            "VIGIE_DATABASE__EMBEDDED_FALLBACK": "false",
            "VIGIE_NATS__URL": self.nats.url,
            "VIGIE_NATS__EMBEDDED": "false",
        })
        env.update(extra)
        return env


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings of this process, read once."""
    return Settings()
