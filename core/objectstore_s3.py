"""S3 adapter of the object store port (MinIO in production, Ceph RGW and moto in tests) through the minio SDK."""

from __future__ import annotations

import asyncio
import io
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import urllib3
from minio import Minio
from minio.commonconfig import COMPLIANCE, ENABLED, Filter
from minio.error import S3Error
from minio.lifecycleconfig import Expiration, LifecycleConfig, NoncurrentVersionExpiration, Rule
from minio.retention import Retention
from urllib3.exceptions import HTTPError

from core.errors import NotFound, Unavailable
from core.objectstore import (
    READ_CHUNK,
    DeletionProof,
    LifecycleRule,
    LockMode,
    ObjectInfo,
    ObjectLocked,
    ObjectReader,
    ObjectVersion,
    StoredObject,
    check_key,
    check_metadata,
)

T = TypeVar("T")

_NOT_FOUND = {"NoSuchKey", "NoSuchVersion", "NoSuchBucket", "InvalidArgument"}
_LOCKED = {"AccessDenied", "InvalidRequest", "ObjectLocked"}
_MARKER_SUFFIX = "-delete-markers"
# User metadata travels as these headers (S3 lower-cases their names).
_USER_METADATA = "x-amz-meta-"


def parse_s3_time(value: str) -> datetime:
    """ISO 8601 with any number of fractional digits (Ceph RGW sends nine, which minio's parser rejects)."""
    head, _, frac = value.rstrip("Z").partition(".")
    parsed = datetime.strptime(head, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    if frac:
        parsed += timedelta(microseconds=int(frac[:6].ljust(6, "0")))
    return parsed


class S3ObjectStore:
    """One bucket per tenant, created with versioning and object lock (they cannot be enabled afterwards)."""

    def __init__(
        self, endpoint: str, *, access_key: str, secret_key: str, secure: bool = True,
        ca_file: Path | None = None, region: str = "us-east-1", bucket_prefix: str = "vigie-",
        public_endpoint: str | None = None, connect_timeout_s: float = 3.0, read_timeout_s: float = 60.0,
    ) -> None:
        # Few retries and short connects: when the store is down the uploader spools instead of hanging.
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=connect_timeout_s, read=read_timeout_s), maxsize=16,
            retries=urllib3.Retry(total=1, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]),
            cert_reqs="CERT_REQUIRED" if secure else "CERT_NONE",
            ca_certs=str(ca_file) if ca_file else None,
        )
        self._client = Minio(endpoint, access_key=access_key, secret_key=secret_key, secure=secure,
                             region=region, http_client=http)
        # Presigning is local computation; a separate client lets URLs name the endpoint browsers reach.
        self._signer = Minio(public_endpoint or endpoint, access_key=access_key, secret_key=secret_key,
                             secure=secure, region=region, http_client=http)
        self._prefix = bucket_prefix
        self.ca_file = ca_file
        self._known: set[str] = set()

    def bucket(self, tenant_id: uuid.UUID) -> str:
        return f"{self._prefix}{uuid.UUID(str(tenant_id))}"

    async def _call(self, fn: Callable[[], T], *, key: str = "") -> T:
        try:
            return await asyncio.to_thread(fn)
        except S3Error as exc:
            if exc.code == "NoSuchBucket":
                # A bucket recreated or lost server-side: forget it, so the next put creates it again.
                self._known.discard(str(exc.bucket_name))
            if exc.code in _NOT_FOUND:
                raise NotFound(f"no object {key!r}: {exc.code}") from exc
            if exc.code in _LOCKED:
                raise ObjectLocked(f"{key!r}: {exc.code} {exc.message}") from exc
            raise Unavailable(f"object store refused: {exc.code} {exc.message}") from exc
        except (HTTPError, OSError) as exc:
            raise Unavailable(f"object store unreachable: {exc}") from exc

    async def ensure_tenant_space(self, tenant_id: uuid.UUID) -> None:
        bucket = self.bucket(tenant_id)
        if bucket in self._known:
            return

        def create() -> None:
            if not self._client.bucket_exists(bucket):
                try:
                    self._client.make_bucket(bucket, object_lock=True)
                except S3Error as exc:
                    if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                        raise

        await self._call(create)
        self._known.add(bucket)

    @staticmethod
    def _lock_args(retain_until: datetime | None, legal_hold: bool) -> dict[str, object]:
        args: dict[str, object] = {"legal_hold": legal_hold}
        if retain_until is not None:
            args["retention"] = Retention(COMPLIANCE, retain_until.astimezone(UTC).replace(tzinfo=None))
        return args

    async def put(
        self, tenant_id: uuid.UUID, key: str, data: bytes, *, content_type: str,
        retain_until: datetime | None = None, legal_hold: bool = False,
    ) -> StoredObject:
        import hashlib

        check_key(key)
        await self.ensure_tenant_space(tenant_id)
        digest = hashlib.sha256(data).hexdigest()
        lock = self._lock_args(retain_until, legal_hold)
        result = await self._call(lambda: self._client.put_object(
            self.bucket(tenant_id), key, io.BytesIO(data), len(data), content_type=content_type,
            metadata={"x-amz-meta-sha256": digest}, **lock,  # type: ignore[arg-type]
        ), key=key)
        return StoredObject(key=key, version_id=result.version_id, size=len(data), sha256=digest)

    async def put_file(
        self, tenant_id: uuid.UUID, key: str, path: Path, *, content_type: str, sha256: str,
        retain_until: datetime | None = None, legal_hold: bool = False, metadata: Mapping[str, str] | None = None,
    ) -> StoredObject:
        check_key(key)
        check_metadata(metadata)
        await self.ensure_tenant_space(tenant_id)
        size = (await asyncio.to_thread(path.stat)).st_size
        lock = self._lock_args(retain_until, legal_hold)
        headers = {f"{_USER_METADATA}{name}": value for name, value in (metadata or {}).items()}
        result = await self._call(lambda: self._client.fput_object(
            self.bucket(tenant_id), key, str(path), content_type=content_type,
            metadata={**headers, f"{_USER_METADATA}sha256": sha256}, **lock,  # type: ignore[arg-type]
        ), key=key)
        return StoredObject(key=key, version_id=result.version_id, size=size, sha256=sha256)

    async def get(self, tenant_id: uuid.UUID, key: str, *, version_id: str | None = None) -> bytes:
        def read() -> bytes:
            response = self._client.get_object(self.bucket(tenant_id), key, version_id=version_id)
            try:
                return bytes(response.read())
            finally:
                response.close()
                response.release_conn()

        return await self._call(read, key=key)

    async def read_stream(self, tenant_id: uuid.UUID, key: str, *, version_id: str | None = None,
                          chunk_size: int = READ_CHUNK) -> ObjectReader:
        # minio returns the urllib3 response unread (preload_content=False): the body is pulled chunk by chunk, each
        # read in a worker thread (ObjectReader.chunks), and the connection goes back to the pool once closed.
        response = await self._call(lambda: self._client.get_object(self.bucket(tenant_id), key,
                                                                    version_id=version_id), key=key)

        def read() -> bytes:
            try:
                return bytes(response.read(chunk_size))
            except (HTTPError, OSError) as exc:
                raise Unavailable(f"object store read of {key!r} failed: {exc}") from exc

        def close() -> None:
            response.close()
            response.release_conn()

        headers = response.headers
        return ObjectReader(int(headers.get("content-length") or 0),
                            headers.get("content-type") or "application/octet-stream", read, close)

    async def download(self, tenant_id: uuid.UUID, key: str, dest: Path, *, version_id: str | None = None) -> None:
        await self._call(lambda: self._client.fget_object(self.bucket(tenant_id), key, str(dest),
                                                          version_id=version_id), key=key)

    async def stat(self, tenant_id: uuid.UUID, key: str, *, version_id: str | None = None) -> ObjectInfo:
        # Lock state is read from the HEAD headers: moto does not implement GET ?retention and RGW's dates
        # have nine fractional digits that minio's retention parser rejects.
        st = await self._call(lambda: self._client.stat_object(self.bucket(tenant_id), key, version_id=version_id),
                              key=key)
        headers = {k.lower(): v for k, v in (st.metadata or {}).items()}
        mode = headers.get("x-amz-object-lock-mode")
        until = headers.get("x-amz-object-lock-retain-until-date")
        lock_mode: LockMode | None = "COMPLIANCE" if mode == "COMPLIANCE" else "GOVERNANCE" if mode else None
        return ObjectInfo(
            key=key, version_id=st.version_id, size=int(st.size or 0),
            last_modified=(st.last_modified or datetime.now(UTC)).astimezone(UTC),
            retention_mode=lock_mode, retain_until=parse_s3_time(until) if until else None,
            legal_hold=headers.get("x-amz-object-lock-legal-hold", "OFF").upper() == "ON",
            metadata={k.removeprefix(_USER_METADATA): v for k, v in headers.items() if k.startswith(_USER_METADATA)},
        )

    async def list_versions(self, tenant_id: uuid.UUID, prefix: str = "") -> list[ObjectVersion]:
        def listing() -> list[ObjectVersion]:
            out = []
            for o in self._client.list_objects(self.bucket(tenant_id), prefix=prefix or None, recursive=True,
                                               include_version=True):
                out.append(ObjectVersion(
                    key=str(o.object_name), version_id=str(o.version_id), size=int(o.size or 0),
                    last_modified=(o.last_modified or datetime.now(UTC)).astimezone(UTC),
                    is_latest=str(o.is_latest).lower() == "true", is_delete_marker=bool(o.is_delete_marker),
                ))
            return out

        return await self._call(listing)

    async def delete(self, tenant_id: uuid.UUID, key: str) -> None:
        await self._call(lambda: self._client.remove_object(self.bucket(tenant_id), key), key=key)

    async def delete_version(self, tenant_id: uuid.UUID, key: str, version_id: str) -> DeletionProof:
        bucket = self.bucket(tenant_id)
        await self._call(lambda: self._client.remove_object(bucket, key, version_id=version_id), key=key)
        # S3 answers 204 even for a version that never existed: the proof is the HEAD that now fails.
        try:
            await self._call(lambda: self._client.stat_object(bucket, key, version_id=version_id), key=key)
        except NotFound:
            return DeletionProof(key=key, version_id=version_id, deleted_at=datetime.now(UTC))
        raise ObjectLocked(f"{key!r} version {version_id} still exists after delete")

    async def set_legal_hold(self, tenant_id: uuid.UUID, key: str, version_id: str, *, on: bool) -> None:
        bucket = self.bucket(tenant_id)
        if on:
            await self._call(lambda: self._client.enable_object_legal_hold(bucket, key, version_id), key=key)
        else:
            await self._call(lambda: self._client.disable_object_legal_hold(bucket, key, version_id), key=key)

    async def set_retention(self, tenant_id: uuid.UUID, key: str, version_id: str, retain_until: datetime) -> None:
        config = Retention(COMPLIANCE, retain_until.astimezone(UTC).replace(tzinfo=None))
        await self._call(lambda: self._client.set_object_retention(self.bucket(tenant_id), key, config,
                                                                   version_id=version_id), key=key)

    async def set_lifecycle(self, tenant_id: uuid.UUID, rules: Sequence[LifecycleRule]) -> None:
        s3_rules = []
        for r in rules:
            s3_rules.append(Rule(
                ENABLED, rule_filter=Filter(prefix=r.prefix), rule_id=r.rule_id,
                expiration=Expiration(days=r.days),
                noncurrent_version_expiration=NoncurrentVersionExpiration(noncurrent_days=r.noncurrent_days),
            ))
            # S3 forbids Days and ExpiredObjectDeleteMarker in one Expiration: lone markers get their own rule.
            s3_rules.append(Rule(
                ENABLED, rule_filter=Filter(prefix=r.prefix), rule_id=r.rule_id + _MARKER_SUFFIX,
                expiration=Expiration(expired_object_delete_marker=True),
            ))
        await self.ensure_tenant_space(tenant_id)
        bucket = self.bucket(tenant_id)
        if s3_rules:
            await self._call(lambda: self._client.set_bucket_lifecycle(bucket, LifecycleConfig(s3_rules)))
        else:
            await self._call(lambda: self._client.delete_bucket_lifecycle(bucket))

    async def get_lifecycle(self, tenant_id: uuid.UUID) -> list[LifecycleRule]:
        config = await self._call(lambda: self._client.get_bucket_lifecycle(self.bucket(tenant_id)))
        if config is None:
            return []
        out = []
        for r in config.rules:
            if not r.rule_id or r.rule_id.endswith(_MARKER_SUFFIX) or r.expiration is None:
                continue
            prefix = r.rule_filter.prefix if r.rule_filter is not None else ""
            noncurrent = r.noncurrent_version_expiration
            out.append(LifecycleRule(rule_id=r.rule_id, prefix=prefix or "", days=int(r.expiration.days or 0),
                                     noncurrent_days=int(noncurrent.noncurrent_days or 0) if noncurrent else 0))
        return out

    async def presigned_get(
        self, tenant_id: uuid.UUID, key: str, *, version_id: str | None, expires: timedelta,
    ) -> str:
        check_key(key)
        return await asyncio.to_thread(self._signer.presigned_get_object, self.bucket(tenant_id), key,
                                       expires=expires, version_id=version_id)
