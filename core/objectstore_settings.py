"""Object store settings (VIGIE_OBJECTSTORE_*) and the factory that picks the adapter: filesystem or S3."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.objectstore import FilesystemObjectStore, ObjectStore
from core.settings import PROJECT_ROOT, is_development

DEV_PRESIGN_SECRET = "vigie-dev-presign-secret-not-for-prod"


class ObjectStoreSettings(BaseSettings):
    """`fs` is the embedded default of a single machine; `s3` is MinIO (or any S3 with object lock) over TLS."""

    model_config = SettingsConfigDict(env_prefix="VIGIE_OBJECTSTORE_", extra="ignore", hide_input_in_errors=True)

    backend: Literal["fs", "s3"] = "fs"
    root: Path = PROJECT_ROOT / "var" / "objects"
    endpoint: str = "127.0.0.1:9000"
    # The host:port that browsers reach, when presigned URLs must not name the internal endpoint.
    public_endpoint: str | None = None
    access_key: SecretStr = SecretStr("")
    secret_key: SecretStr = SecretStr("")
    secure: bool = True
    ca_file: Path | None = None
    region: str = "us-east-1"
    bucket_prefix: str = "vigie-"
    # Filesystem presigned URLs are HMAC-signed links served by the API under this base.
    presign_secret: SecretStr = SecretStr(DEV_PRESIGN_SECRET)
    presign_base_url: str = "http://127.0.0.1:8000/media"
    # The platform's environment (VIGIE_ENVIRONMENT, as in core.settings): outside dev and test, the development
    # presign secret would let anyone forge /media links, so the process refuses to start with it.
    environment: str = Field(default="dev", validation_alias="VIGIE_ENVIRONMENT")

    @model_validator(mode="after")
    def _no_development_secret_in_production(self) -> ObjectStoreSettings:
        if not is_development(self.environment) and self.presign_secret.get_secret_value() == DEV_PRESIGN_SECRET:
            raise ValueError(f"environment {self.environment!r} refuses the development default for "
                             "VIGIE_OBJECTSTORE_PRESIGN_SECRET: set it (`vigie secrets generate` prints a fresh value)")
        return self


def open_object_store(settings: ObjectStoreSettings) -> ObjectStore:
    """The adapter the settings ask for; the minio SDK is imported only when S3 is used."""
    if settings.backend == "fs":
        return FilesystemObjectStore(settings.root, presign_secret=settings.presign_secret.get_secret_value().encode(),
                                     presign_base_url=settings.presign_base_url)
    from core.objectstore_s3 import S3ObjectStore

    return S3ObjectStore(
        settings.endpoint, access_key=settings.access_key.get_secret_value(),
        secret_key=settings.secret_key.get_secret_value(), secure=settings.secure, ca_file=settings.ca_file,
        region=settings.region, bucket_prefix=settings.bucket_prefix, public_endpoint=settings.public_endpoint,
    )
