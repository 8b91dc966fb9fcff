"""Object store port: one versioned, object-locked space (bucket) per tenant; the local filesystem adapter."""

from __future__ import annotations

import asyncio
import base64
import errno
import hashlib
import hmac
import json
import os
import re
import shutil
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal, Protocol
from urllib.parse import quote, urlencode

from core.errors import Conflict, NotFound

LockMode = Literal["COMPLIANCE", "GOVERNANCE"]
# Chunks of a streamed read: bounded memory whatever the object's size.
READ_CHUNK = 1 << 20


class ObjectLocked(Conflict):
    """The version is under retention or a legal hold: it cannot be deleted, nor its retention shortened."""


@dataclass(frozen=True)
class StoredObject:
    """What the store kept: enough to prove later that the bytes are unchanged."""

    key: str
    version_id: str | None
    size: int
    sha256: str


@dataclass(frozen=True)
class ObjectVersion:
    """One entry of a version listing; delete markers carry no data."""

    key: str
    version_id: str
    size: int
    last_modified: datetime
    is_latest: bool
    is_delete_marker: bool


@dataclass(frozen=True)
class ObjectInfo:
    """The lock state of one version, as the store enforces it."""

    key: str
    version_id: str | None
    size: int
    last_modified: datetime
    retention_mode: LockMode | None
    retain_until: datetime | None
    legal_hold: bool
    # What the writer attached to the version (`put_file(metadata=…)`) plus its `sha256`: lets the index be rebuilt
    # from the store alone (dvr.reindex).
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ObjectReader:
    """An open version read in chunks, each read (and the close) in a worker thread: one chunk in memory at a time."""

    size: int
    content_type: str
    read: Callable[[], bytes]
    close: Callable[[], None]

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            while chunk := await asyncio.to_thread(self.read):
                yield chunk
        finally:
            await asyncio.to_thread(self.close)


@dataclass(frozen=True)
class LifecycleRule:
    """Expiry of current versions after `days`, of noncurrent versions after `noncurrent_days`, and of lone markers."""

    rule_id: str
    prefix: str
    days: int
    noncurrent_days: int = 1


@dataclass(frozen=True)
class DeletionProof:
    """A version-specific delete that the store confirmed: the version no longer exists."""

    key: str
    version_id: str
    deleted_at: datetime


class ObjectStore(Protocol):
    """The port every process uses; blocking SDK calls stay off the event loop inside adapters."""

    async def ensure_tenant_space(self, tenant_id: uuid.UUID) -> None: ...

    async def put(
        self, tenant_id: uuid.UUID, key: str, data: bytes, *, content_type: str,
        retain_until: datetime | None = None, legal_hold: bool = False,
    ) -> StoredObject: ...

    async def put_file(
        self, tenant_id: uuid.UUID, key: str, path: Path, *, content_type: str, sha256: str,
        retain_until: datetime | None = None, legal_hold: bool = False, metadata: Mapping[str, str] | None = None,
    ) -> StoredObject: ...

    async def get(self, tenant_id: uuid.UUID, key: str, *, version_id: str | None = None) -> bytes: ...

    async def read_stream(self, tenant_id: uuid.UUID, key: str, *, version_id: str | None = None,
                          chunk_size: int = READ_CHUNK) -> ObjectReader: ...  # NotFound before any byte is read

    async def download(self, tenant_id: uuid.UUID, key: str, dest: Path, *, version_id: str | None = None) -> None: ...

    async def stat(self, tenant_id: uuid.UUID, key: str, *, version_id: str | None = None) -> ObjectInfo: ...

    async def list_versions(self, tenant_id: uuid.UUID, prefix: str = "") -> list[ObjectVersion]: ...

    async def delete(self, tenant_id: uuid.UUID, key: str) -> None: ...

    async def delete_version(self, tenant_id: uuid.UUID, key: str, version_id: str) -> DeletionProof: ...

    async def set_legal_hold(self, tenant_id: uuid.UUID, key: str, version_id: str, *, on: bool) -> None: ...

    async def set_retention(self, tenant_id: uuid.UUID, key: str, version_id: str, retain_until: datetime) -> None: ...

    async def set_lifecycle(self, tenant_id: uuid.UUID, rules: Sequence[LifecycleRule]) -> None: ...

    async def get_lifecycle(self, tenant_id: uuid.UUID) -> list[LifecycleRule]: ...

    async def presigned_get(
        self, tenant_id: uuid.UUID, key: str, *, version_id: str | None, expires: timedelta,
    ) -> str: ...


# The filesystem keeps the versions of a key in a folder named after the key plus this suffix.
_VERSIONS_SUFFIX = ".~v"


def check_key(key: str) -> None:
    """Keys are relative slash paths without empty, dot or reserved segments (they become file paths)."""
    parts = key.split("/")
    if (not key or key.startswith("/") or "\\" in key
            or any(p in ("", ".", "..") or p.endswith(_VERSIONS_SUFFIX) for p in parts)):
        raise ValueError(f"invalid object key {key!r}")


_METADATA_NAME = re.compile(r"^[a-z][a-z0-9-]{0,39}$")


def check_metadata(metadata: Mapping[str, str] | None) -> None:
    """Names an S3 header carries unchanged (lower case, no underscore) and printable ASCII values; `sha256` is the
    store's own."""
    for name, value in (metadata or {}).items():
        if not _METADATA_NAME.match(name) or name == "sha256":
            raise ValueError(f"invalid metadata name {name!r}")
        if not value.isascii() or not value.isprintable() or len(value) > 256:
            raise ValueError(f"invalid metadata value for {name!r}")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with tmp.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass
class _Meta:
    version_id: str
    created_at: float
    size: int
    sha256: str
    content_type: str
    delete_marker: bool = False
    retain_until: float | None = None
    legal_hold: bool = False
    metadata: dict[str, str] | None = None


class FilesystemObjectStore:
    """Embedded default: one folder per tenant under `root`, every version kept, locks enforced by this adapter.

    A version is a data file plus a JSON sidecar; the sidecar's rename is the commit point, so a crash never
    leaves a half-written version visible. Lifecycle rules are stored, and `enforce_lifecycle` applies them
    (the retention sweeper calls it): no server runs them for us here.
    """

    def __init__(self, root: Path, *, presign_secret: bytes = b"", presign_base_url: str = "") -> None:
        self._root = root
        self._presign_secret = presign_secret
        self._presign_base_url = presign_base_url.rstrip("/")
        self._clock_lock = threading.Lock()
        self._last_ns = 0

    # -- layout ---------------------------------------------------------------------------------------------
    def _space(self, tenant_id: uuid.UUID) -> Path:
        return self._root / str(uuid.UUID(str(tenant_id)))

    def _versions_dir(self, tenant_id: uuid.UUID, key: str) -> Path:
        check_key(key)
        return self._space(tenant_id) / (key + _VERSIONS_SUFFIX)

    def _new_version_id(self) -> str:
        # Sortable by creation even within one nanosecond tick, so "latest" is the greatest id.
        with self._clock_lock:
            now = max(time.time_ns(), self._last_ns + 1)
            self._last_ns = now
        return f"{now:020d}{uuid.uuid4().hex[:12]}"

    @staticmethod
    def _metas(vdir: Path) -> list[_Meta]:
        if not vdir.is_dir():
            return []
        metas = [_Meta(**json.loads(p.read_text())) for p in vdir.glob("*.json")]
        return sorted(metas, key=lambda m: m.version_id)

    def _live_version(self, tenant_id: uuid.UUID, key: str, version_id: str | None) -> tuple[Path, _Meta]:
        vdir = self._versions_dir(tenant_id, key)
        metas = self._metas(vdir)
        if version_id is None:
            meta = metas[-1] if metas else None
        else:
            meta = next((m for m in metas if m.version_id == version_id), None)
        if meta is None or meta.delete_marker:
            raise NotFound(f"no object {key!r}" + (f" version {version_id}" if version_id else ""))
        return vdir, meta

    # -- port -----------------------------------------------------------------------------------------------
    async def ensure_tenant_space(self, tenant_id: uuid.UUID) -> None:
        await asyncio.to_thread(self._space(tenant_id).mkdir, parents=True, exist_ok=True)

    async def put(
        self, tenant_id: uuid.UUID, key: str, data: bytes, *, content_type: str,
        retain_until: datetime | None = None, legal_hold: bool = False,
    ) -> StoredObject:
        vdir = self._versions_dir(tenant_id, key)
        return await asyncio.to_thread(
            self._commit, vdir, key, lambda dest: _fsync_write(dest, data), len(data),
            hashlib.sha256(data).hexdigest(), content_type, retain_until, legal_hold)

    async def put_file(
        self, tenant_id: uuid.UUID, key: str, path: Path, *, content_type: str, sha256: str,
        retain_until: datetime | None = None, legal_hold: bool = False, metadata: Mapping[str, str] | None = None,
    ) -> StoredObject:
        check_metadata(metadata)
        vdir = self._versions_dir(tenant_id, key)

        def copy(dest: Path) -> None:
            tmp = dest.with_name(f".{dest.name}.tmp")
            try:
                # Same filesystem (the recorder's spool beside the store): the version takes the file's inode, no
                # second copy of the bytes. Read-only, as a locked object is; the caller may only delete its path.
                os.link(path, tmp)
                tmp.chmod(0o444)
            except OSError as exc:
                if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
                    raise
                shutil.copyfile(path, tmp)
            with tmp.open("rb") as f:
                os.fsync(f.fileno())
            tmp.replace(dest)

        def stat_and_commit() -> StoredObject:
            # The size is read in the same worker-thread trip as the commit: one hop off the event loop per object.
            return self._commit(vdir, key, copy, path.stat().st_size, sha256, content_type, retain_until, legal_hold,
                                metadata)

        return await asyncio.to_thread(stat_and_commit)

    def _commit(self, vdir: Path, key: str, write: Callable[[Path], None], size: int, sha256: str, content_type: str,
                retain_until: datetime | None, legal_hold: bool,
                metadata: Mapping[str, str] | None = None) -> StoredObject:
        vdir.mkdir(parents=True, exist_ok=True)
        version_id = self._new_version_id()
        write(vdir / f"{version_id}.data")
        meta = _Meta(version_id=version_id, created_at=time.time(), size=size, sha256=sha256,
                     content_type=content_type, legal_hold=legal_hold,
                     retain_until=retain_until.timestamp() if retain_until else None,
                     metadata=dict(metadata) if metadata else None)
        _fsync_write(vdir / f"{version_id}.json", json.dumps(asdict(meta)).encode())
        _fsync_dir(vdir)
        return StoredObject(key=key, version_id=version_id, size=size, sha256=sha256)

    async def get(self, tenant_id: uuid.UUID, key: str, *, version_id: str | None = None) -> bytes:
        def read() -> bytes:
            vdir, meta = self._live_version(tenant_id, key, version_id)
            return (vdir / f"{meta.version_id}.data").read_bytes()

        return await asyncio.to_thread(read)

    async def read_stream(self, tenant_id: uuid.UUID, key: str, *, version_id: str | None = None,
                          chunk_size: int = READ_CHUNK) -> ObjectReader:
        def open_version() -> ObjectReader:
            vdir, meta = self._live_version(tenant_id, key, version_id)
            f = (vdir / f"{meta.version_id}.data").open("rb")
            return ObjectReader(meta.size, meta.content_type, lambda: f.read(chunk_size), f.close)

        return await asyncio.to_thread(open_version)

    async def read_range(self, tenant_id: uuid.UUID, key: str, *, version_id: str | None, first: int, last: int,
                         chunk_size: int = READ_CHUNK) -> ObjectReader:
        """Bytes `first` to `last` (inclusive, as HTTP ranges count them) of a version, read in chunks; the
        reader's size is the range's length. The caller checks the range against the object's size."""
        def open_range() -> ObjectReader:
            vdir, meta = self._live_version(tenant_id, key, version_id)
            f = (vdir / f"{meta.version_id}.data").open("rb")
            f.seek(first)
            left = [last - first + 1]

            def read() -> bytes:
                chunk = f.read(min(chunk_size, left[0])) if left[0] > 0 else b""
                left[0] -= len(chunk)
                return chunk

            return ObjectReader(last - first + 1, meta.content_type, read, f.close)

        return await asyncio.to_thread(open_range)

    async def download(self, tenant_id: uuid.UUID, key: str, dest: Path, *, version_id: str | None = None) -> None:
        def copy() -> None:
            vdir, meta = self._live_version(tenant_id, key, version_id)
            shutil.copyfile(vdir / f"{meta.version_id}.data", dest)

        await asyncio.to_thread(copy)

    async def stat(self, tenant_id: uuid.UUID, key: str, *, version_id: str | None = None) -> ObjectInfo:
        _, meta = await asyncio.to_thread(self._live_version, tenant_id, key, version_id)
        return self._info(key, meta)

    @staticmethod
    def _info(key: str, meta: _Meta) -> ObjectInfo:
        until = datetime.fromtimestamp(meta.retain_until, UTC) if meta.retain_until else None
        return ObjectInfo(key=key, version_id=meta.version_id, size=meta.size,
                          last_modified=datetime.fromtimestamp(meta.created_at, UTC),
                          retention_mode="COMPLIANCE" if until else None, retain_until=until,
                          legal_hold=meta.legal_hold, metadata={**(meta.metadata or {}), "sha256": meta.sha256})

    async def list_versions(self, tenant_id: uuid.UUID, prefix: str = "") -> list[ObjectVersion]:
        return await asyncio.to_thread(self._list_versions, tenant_id, prefix)

    def _list_versions(self, tenant_id: uuid.UUID, prefix: str) -> list[ObjectVersion]:
        space = self._space(tenant_id)
        out: list[ObjectVersion] = []
        if not space.is_dir():
            return out
        for vdir in sorted(space.rglob("*" + _VERSIONS_SUFFIX)):
            key = vdir.relative_to(space).as_posix()[: -len(_VERSIONS_SUFFIX)]
            if not key.startswith(prefix):
                continue
            metas = self._metas(vdir)
            for i, m in enumerate(metas):
                out.append(ObjectVersion(key=key, version_id=m.version_id, size=m.size,
                                         last_modified=datetime.fromtimestamp(m.created_at, UTC),
                                         is_latest=i == len(metas) - 1, is_delete_marker=m.delete_marker))
        return out

    async def delete(self, tenant_id: uuid.UUID, key: str) -> None:
        vdir = self._versions_dir(tenant_id, key)

        def mark() -> None:
            vdir.mkdir(parents=True, exist_ok=True)
            meta = _Meta(version_id=self._new_version_id(), created_at=time.time(), size=0, sha256="",
                         content_type="", delete_marker=True)
            _fsync_write(vdir / f"{meta.version_id}.json", json.dumps(asdict(meta)).encode())

        await asyncio.to_thread(mark)

    async def delete_version(self, tenant_id: uuid.UUID, key: str, version_id: str) -> DeletionProof:
        vdir = self._versions_dir(tenant_id, key)
        return await asyncio.to_thread(self._delete_version, vdir, key, version_id)

    @staticmethod
    def _delete_version(vdir: Path, key: str, version_id: str) -> DeletionProof:
        meta_path = vdir / f"{version_id}.json"
        if not meta_path.exists():
            raise NotFound(f"no version {version_id} of {key!r}")
        meta = _Meta(**json.loads(meta_path.read_text()))
        if meta.legal_hold:
            raise ObjectLocked(f"{key!r} version {version_id} is under a legal hold")
        if meta.retain_until is not None and meta.retain_until > time.time():
            raise ObjectLocked(f"{key!r} version {version_id} is retained until "
                               f"{datetime.fromtimestamp(meta.retain_until, UTC).isoformat()}")
        meta_path.unlink()
        (vdir / f"{version_id}.data").unlink(missing_ok=True)
        _fsync_dir(vdir)
        if not any(vdir.iterdir()):
            vdir.rmdir()
        return DeletionProof(key=key, version_id=version_id, deleted_at=datetime.now(UTC))

    def _update_meta(self, tenant_id: uuid.UUID, key: str, version_id: str,
                     change: Callable[[_Meta], None]) -> None:
        vdir, meta = self._live_version(tenant_id, key, version_id)
        change(meta)
        _fsync_write(vdir / f"{version_id}.json", json.dumps(asdict(meta)).encode())

    async def set_legal_hold(self, tenant_id: uuid.UUID, key: str, version_id: str, *, on: bool) -> None:
        def change(meta: _Meta) -> None:
            meta.legal_hold = on

        await asyncio.to_thread(self._update_meta, tenant_id, key, version_id, change)

    async def set_retention(self, tenant_id: uuid.UUID, key: str, version_id: str, retain_until: datetime) -> None:
        def change(meta: _Meta) -> None:
            if meta.retain_until is not None and retain_until.timestamp() < meta.retain_until:
                raise ObjectLocked(f"{key!r} version {version_id}: a compliance retention cannot be shortened")
            meta.retain_until = retain_until.timestamp()

        await asyncio.to_thread(self._update_meta, tenant_id, key, version_id, change)

    def _lifecycle_path(self, tenant_id: uuid.UUID) -> Path:
        return self._space(tenant_id) / "lifecycle.json"

    async def set_lifecycle(self, tenant_id: uuid.UUID, rules: Sequence[LifecycleRule]) -> None:
        path = self._lifecycle_path(tenant_id)
        payload = json.dumps([asdict(r) for r in rules]).encode()

        def write() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            _fsync_write(path, payload)

        await asyncio.to_thread(write)

    async def get_lifecycle(self, tenant_id: uuid.UUID) -> list[LifecycleRule]:
        path = self._lifecycle_path(tenant_id)
        if not path.exists():
            return []
        return [LifecycleRule(**r) for r in json.loads(await asyncio.to_thread(path.read_text))]

    async def enforce_lifecycle(self, tenant_id: uuid.UUID, *, now: datetime | None = None) -> int:
        """Apply the stored rules as S3 would, version-specific; returns how many versions and markers went."""
        now = now or datetime.now(UTC)
        removed = 0
        for rule in await self.get_lifecycle(tenant_id):
            by_key: dict[str, list[ObjectVersion]] = {}
            for v in await self.list_versions(tenant_id, rule.prefix):
                by_key.setdefault(v.key, []).append(v)
            for key, versions in by_key.items():
                for i, v in enumerate(versions):
                    # A noncurrent version's clock starts when it was superseded, as in S3.
                    since = versions[i + 1].last_modified if i + 1 < len(versions) else v.last_modified
                    limit = timedelta(days=rule.days if v.is_latest else rule.noncurrent_days)
                    lone_marker = v.is_delete_marker and len(versions) == 1
                    if lone_marker or now - since >= limit:
                        try:
                            await self.delete_version(tenant_id, key, v.version_id)
                            removed += 1
                        except (ObjectLocked, NotFound):
                            continue
        return removed

    async def presigned_get(
        self, tenant_id: uuid.UUID, key: str, *, version_id: str | None, expires: timedelta,
    ) -> str:
        if not self._presign_secret:
            raise RuntimeError("the filesystem store has no presign secret configured")
        check_key(key)
        until = int(time.time() + expires.total_seconds())
        sig = self._signature(tenant_id, key, version_id, until)
        query = urlencode({"version": version_id or "", "expires": until, "signature": sig})
        return f"{self._presign_base_url}/{tenant_id}/{quote(key)}?{query}"

    def _signature(self, tenant_id: uuid.UUID, key: str, version_id: str | None, until: int) -> str:
        message = f"{tenant_id}\n{key}\n{version_id or ''}\n{until}".encode()
        mac = hmac.new(self._presign_secret, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

    def verify_presigned(self, tenant_id: uuid.UUID, key: str, version_id: str | None, expires: int,
                         signature: str) -> bool:
        """For the HTTP route that serves a filesystem presigned URL: signature valid and not expired."""
        if not self._presign_secret or expires < time.time():
            return False
        return hmac.compare_digest(self._signature(tenant_id, key, version_id or None, expires), signature)
