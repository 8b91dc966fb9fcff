"""Typed settings read from VIGIE_* environment variables (nested with a double underscore)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, Field, IPvAnyNetwork, PrivateAttr, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.nats_auth import ADMIN_USER, PROCESS_USERS, development_password

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Environments that may run on the development defaults below; any other (production, staging...) refuses to start
# while one of them is still in place.
DEVELOPMENT_ENVIRONMENTS = frozenset({"dev", "test"})
DEV_DATA_KEY = "dmlnaWUtZGV2LWRhdGEta2V5LW5vdC1mb3ItcHJvZCE="
DEV_PASSWORDS = {"owner_password": "vigie-owner-dev", "app_password": "vigie-app-dev",
                 "department_password": "vigie-department-dev"}


def is_development(environment: str) -> bool:
    return environment in DEVELOPMENT_ENVIRONMENTS


class DefaultSecretRefused(ValueError):
    """A process outside dev and test was about to use a secret left at its public development value."""


class DatabaseSettings(BaseModel):
    """Where Postgres is and which roles the platform uses."""

    # Superuser DSN, used only to create the database and the three roles (bootstrap).
    admin_dsn: SecretStr = SecretStr("postgresql://postgres@127.0.0.1:5432/postgres")
    # One host, a socket folder, or several "host:port" separated by commas (a primary and its standbys): a
    # connection then goes to the first that accepts `target_session_attrs`, so a promoted standby is found.
    host: str = "127.0.0.1"
    port: int = 5432
    target_session_attrs: str = "read-write"
    name: str = "vigie"
    owner_role: str = "vigie_owner"
    owner_password: SecretStr = SecretStr(DEV_PASSWORDS["owner_password"])
    app_role: str = "vigie_app"
    app_password: SecretStr = SecretStr(DEV_PASSWORDS["app_password"])
    department_role: str = "vigie_department"
    department_password: SecretStr = SecretStr(DEV_PASSWORDS["department_password"])
    # Owns the sign-in functions (SECURITY DEFINER) through which the API reads memberships and resolves sessions
    # across tenants without the department role; it cannot log in.
    signin_role: str = "vigie_signin"
    pool_min_size: int = 2
    pool_max_size: int = 10
    # When the machine's server is unreachable, start the embedded one (pgserver) under var/.
    embedded_fallback: bool = True
    # Set by Settings outside dev and test: a role's DSN is then refused while its password is the development one.
    # Checked where a DSN is taken, so a process is refused the default passwords of the roles it uses only (the API
    # holds no department password at all).
    _refuse_defaults: bool = PrivateAttr(default=False)

    def _password(self, field: str) -> SecretStr:
        password: SecretStr = getattr(self, field)
        if self._refuse_defaults and password.get_secret_value() == DEV_PASSWORDS[field]:
            raise DefaultSecretRefused(f"VIGIE_DATABASE__{field.upper()} is its development default, refused outside "
                                       "dev and test: set it (`vigie secrets generate` prints fresh values)")
        return password

    def dsn_for(self, role: str, password: SecretStr) -> str:
        """DSN for one of the platform roles on the configured database."""
        from urllib.parse import quote

        host = self.host
        if host.startswith("/"):
            return f"postgresql://{quote(role)}:{quote(password.get_secret_value())}@/{self.name}?host={host}"
        if "," in host:
            return (f"postgresql://{quote(role)}:{quote(password.get_secret_value())}@{host}/{self.name}"
                    f"?target_session_attrs={self.target_session_attrs}")
        return f"postgresql://{quote(role)}:{quote(password.get_secret_value())}@{host}:{self.port}/{self.name}"

    @property
    def owner_dsn(self) -> str:
        return self.dsn_for(self.owner_role, self._password("owner_password"))

    @property
    def app_dsn(self) -> str:
        return self.dsn_for(self.app_role, self._password("app_password"))

    @property
    def department_dsn(self) -> str:
        return self.dsn_for(self.department_role, self._password("department_password"))


class NatsSettings(BaseModel):
    """NATS JetStream connection; `embedded` starts the project's own nats-server."""

    url: str = "nats://127.0.0.1:4333"
    embedded: bool = True
    store_dir: Path = PROJECT_ROOT / "var" / "nats"
    stream_replicas: int = 1
    duplicate_window_s: float = 120.0
    # How long a publish is sent again (same Nats-Msg-Id) through a stream leader change before it fails.
    publish_retry_s: float = 20.0
    # This process's NATS user (core.nats_auth: its own by default: api, alerts, dvr, inference, mobile_push) and
    # password; on dev and test platforms an empty password is that user's development password.
    user: str = ""
    password: SecretStr = SecretStr("")
    # TLS to the servers: the CA that signed their certificates (a tls:// URL, or this file, turns TLS on), and this
    # client's certificate and key when the servers verify clients.
    tls_ca_file: Path | None = None
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None


class AuthSettings(BaseModel):
    """Token issuing and verification."""

    issuer: str = "https://vigie.local"
    audience: str = "vigie-api"
    access_ttl_s: int = 300
    refresh_ttl_s: int = 12 * 3600
    # Keys older than this are retired from signing; they stay published until tokens signed by them expire.
    signing_key_max_age_s: int = 30 * 86400
    # Password failures: free attempts, then exponential delays, then a lock an administrator lifts. Failures are
    # reset only when the last factor of a sign-in succeeds.
    max_failures_before_delay: int = 5
    max_consecutive_failures: int = 100
    # Second-factor failures, counted apart and never reset by a correct password: past this many the account is
    # locked until an administrator unlocks it (10 guesses among a million codes).
    max_second_factor_failures: int = 10
    # Misses after which a second-factor challenge is burned: the password must be given again.
    challenge_max_misses: int = 3
    # Sign-in attempts per client address (an IPv6 address counts for its /64) and minute.
    login_rate_per_ip_per_minute: int = 20
    # Failed sign-ins per minute across the platform (every account, every address): past it, every sign-in waits for
    # the next minute, so a spray over many accounts from many addresses is held to this rate.
    platform_failures_per_minute: int = 300
    totp_issuer: str = "Vigie"
    # Enrolment links (an invitation, a forced re-enrolment): lifetime, wrong passwords or codes before the link is
    # burned, and the console that opens them (its /inscription page; the token travels in the fragment, which no
    # server receives). Empty: the console the API serves, on `api.public_url`.
    enrolment_ttl_s: int = 72 * 3600
    enrolment_max_misses: int = 5
    enrolment_console_url: str = ""

    def enrolment_console(self, api_public_url: str) -> str:
        """The console enrolment links open: the configured one, else the one the API serves."""
        return self.enrolment_console_url or f"{api_public_url.rstrip('/')}/console/"


class OidcSettings(BaseModel):
    """An external identity provider (ProConnect, Keycloak); disabled when `issuer` is empty."""

    issuer: str = ""
    client_id: str = ""
    client_secret: SecretStr = SecretStr("")
    redirect_uri: str = ""
    scope: str = "openid email"
    # Only identities a department admin linked to a local account (by issuer and subject, never by e-mail) may sign
    # in; no automatic provisioning.
    leeway_s: int = 5
    # Sign-ins started and not yet finished, across the platform; past it /auth/oidc/start answers 429.
    max_pending_flows: int = 10_000


class ApiSettings(BaseModel):
    """HTTP server."""

    host: str = "127.0.0.1"
    port: int = 8000
    max_body_bytes: int = 1_000_000
    # Reverse proxies / load balancers in front of the API (CIDRs, e.g. ["10.0.0.0/8"]): only a peer inside them is
    # believed when it names the client in X-Forwarded-For (api/proxies.py); empty = the socket's peer is the client.
    trusted_proxies: list[IPvAnyNetwork] = Field(default_factory=list)
    public_url: str = "http://127.0.0.1:8000"
    # Prometheus metrics are served on their own listener (host:port), never on the public port; empty: not served.
    metrics_address: str = "127.0.0.1:9100"
    # The live queue (SSE): the caller is authorised again at every heartbeat; streams one session may hold at once.
    live_heartbeat_s: float = Field(default=15.0, gt=0)
    live_streams_per_session: int = Field(default=3, ge=1)


class Settings(BaseSettings):
    """All settings of the platform; every process reads the same tree."""

    # Errors never print the values read (secrets among them).
    model_config = SettingsConfigDict(env_prefix="VIGIE_", env_nested_delimiter="__", extra="ignore",
                                      hide_input_in_errors=True)

    environment: str = "dev"
    department_code: str = "95"
    var_dir: Path = PROJECT_ROOT / "var"
    # 32-byte key (urlsafe base64) protecting secrets at rest: camera credentials, TOTP seeds, signing keys.
    data_key: SecretStr = SecretStr(DEV_DATA_KEY)
    log_level: str = "INFO"
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    nats: NatsSettings = Field(default_factory=NatsSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    oidc: OidcSettings = Field(default_factory=OidcSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)

    @model_validator(mode="after")
    def _no_development_secret_in_production(self) -> Settings:
        """Outside dev and test, a secret every process holds (the data key, its NATS password) left at its public
        development value stops the process at start; database passwords are checked where their DSN is taken."""
        if not is_development(self.environment):
            self.database._refuse_defaults = True
            defaults = default_secrets(self)
            if defaults:
                raise ValueError(
                    f"environment {self.environment!r} refuses development defaults for {', '.join(defaults)}: set "
                    "them (`vigie secrets generate` prints fresh values)")
        return self

    def nats_credentials(self, process: str) -> tuple[str, str]:
        """(user, password) this process connects to NATS with."""
        user = self.nats.user or process
        password = self.nats.password.get_secret_value()
        if not password and is_development(self.environment):
            password = development_password(user)
        return user, password

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
            "VIGIE_DATABASE__TARGET_SESSION_ATTRS": db.target_session_attrs,
            "VIGIE_DATABASE__ADMIN_DSN": db.admin_dsn.get_secret_value(),
            "VIGIE_DATABASE__EMBEDDED_FALLBACK": "false",
            "VIGIE_NATS__URL": self.nats.url,
            "VIGIE_NATS__EMBEDDED": "false",
            # Each child connects as its own NATS user (core.nats_auth): neither user nor password is passed on.
            **({"VIGIE_NATS__TLS_CA_FILE": str(self.nats.tls_ca_file)} if self.nats.tls_ca_file else {}),
        })
        env.update(extra)
        return env


def default_secrets(settings: Settings) -> list[str]:
    """The secrets every process holds (as environment variables) that are still their development default."""
    found = []
    if settings.data_key.get_secret_value() == DEV_DATA_KEY:
        found.append("VIGIE_DATA_KEY")
    nats_password = settings.nats.password.get_secret_value()
    if not nats_password or nats_password in {development_password(u) for u in (*PROCESS_USERS, ADMIN_USER)}:
        found.append("VIGIE_NATS__PASSWORD")
    return found


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings of this process, read once."""
    return Settings()
