"""Object store port: one space (bucket) per tenant; adapters for S3/MinIO and the local filesystem."""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from core.errors import NotFound


@dataclass(frozen=True)
class StoredObject:
    """What the store kept: enough to prove later that the bytes are unchanged."""

    key: str
    version_id: str | None
    size: int
    sha256: str


class ObjectStore(Protocol):
    """The port every process uses; blocking SDK calls stay off the event loop inside adapters."""

    async def ensure_tenant_space(self, tenant_id: uuid.UUID) -> None: ...

    async def put(self, tenant_id: uuid.UUID, key: str, data: bytes, *, content_type: str) -> StoredObject: ...

    async def get(self, tenant_id: uuid.UUID, key: str, *, version_id: str | None = None) -> bytes: ...


def _check_key(key: str) -> None:
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"invalid object key {key!r}")


class FilesystemObjectStore:
    """Embedded default: one folder per tenant under `root`; writes are atomic (temp file, fsync, rename)."""

    def __init__(self, root: Path) -> None:
        self._root = root

    def _path(self, tenant_id: uuid.UUID, key: str) -> Path:
        _check_key(key)
        return self._root / str(uuid.UUID(str(tenant_id))) / key

    async def ensure_tenant_space(self, tenant_id: uuid.UUID) -> None:
        await asyncio.to_thread(self._path(tenant_id, "x").parent.mkdir, parents=True, exist_ok=True)

    async def put(self, tenant_id: uuid.UUID, key: str, data: bytes, *, content_type: str) -> StoredObject:
        path = self._path(tenant_id, key)
        return await asyncio.to_thread(self._write, path, key, data)

    @staticmethod
    def _write(path: Path, key: str, data: bytes) -> StoredObject:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        with tmp.open("wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(path)
        return StoredObject(key=key, version_id=None, size=len(data), sha256=hashlib.sha256(data).hexdigest())

    async def get(self, tenant_id: uuid.UUID, key: str, *, version_id: str | None = None) -> bytes:
        path = self._path(tenant_id, key)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError as exc:
            raise NotFound(f"no object {key!r}") from exc
