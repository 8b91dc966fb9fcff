"""Signed evidence packages: a canonical ZIP of clips plus a manifest signed with Ed25519, and its offline verifier.

`python -m dvr.export verify PACKAGE [--public-key KEY.pem]` checks the signature, every file's SHA-256, that the
package holds exactly the listed files, and that the archive bytes are the canonical ones: any 1-bit change fails.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import shutil
import sys
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from dvr.errors import ExportTampered
from journal.keys import key_id, public_pem

__all__ = ["PackageFile", "Verified", "build_package", "build_package_file", "key_id", "main", "public_pem",
           "verify_package"]

MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
PUBLIC_KEY = "signing-key.pem"
README = "LISEZMOI.txt"
# Fixed member metadata: the same content always gives the same archive bytes, so the bytes can be re-derived.
_EPOCH = (1980, 1, 1, 0, 0, 0)
_CHUNK = 1 << 20
_README_TEXT = (
    "Export de preuves video (Vigie).\n"
    "manifest.json liste chaque fichier avec son empreinte SHA-256, la camera, l'intervalle, la requisition et\n"
    "l'auteur de l'export; manifest.sig est la signature Ed25519 de manifest.json par la cle signing-key.pem.\n"
    "Verification hors ligne: python -m dvr.export verify <paquet.zip> --public-key <cle de la plateforme>.\n"
)


@dataclass(frozen=True)
class PackageFile:
    """A file of the package (its bytes, or a file on disk streamed in chunks) and what the manifest says of it."""

    name: str
    data: bytes | Path
    description: dict[str, Any]


# A member of the archive: its name, its size and how to open its bytes for reading.
_Member = tuple[str, int, Callable[[], IO[bytes]]]


def _member(name: str, data: bytes | Path) -> _Member:
    if isinstance(data, Path):
        path = data
        return name, path.stat().st_size, lambda: path.open("rb")
    return name, len(data), lambda: io.BytesIO(data)


def _hash(f: IO[bytes]) -> str:
    digest = hashlib.sha256()
    while block := f.read(_CHUNK):
        digest.update(block)
    return digest.hexdigest()


def _digest(opener: Callable[[], IO[bytes]]) -> str:
    with opener() as f:
        return _hash(f)


def _write_canonical(target: IO[bytes], members: Sequence[_Member]) -> None:
    """The canonical archive, members streamed in chunks. The size is set before writing, exactly as
    ZipFile.writestr does, so the bytes equal those of packages built in memory."""
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, size, opener in sorted(members, key=lambda m: m[0]):
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.compress_type = zipfile.ZIP_STORED
            info.external_attr = 0o100644 << 16
            info.create_system = 3
            info.file_size = size
            with opener() as source, archive.open(info, "w") as dest:
                shutil.copyfileobj(source, dest, _CHUNK)


def _package_members(files: Sequence[PackageFile], header: dict[str, Any],
                     private_key: Ed25519PrivateKey) -> tuple[list[_Member], bytes]:
    names = [f.name for f in files]
    if len(set(names)) != len(names) or {MANIFEST, SIGNATURE, PUBLIC_KEY, README} & set(names):
        raise ValueError("package file names must be unique and not reserved")
    public = private_key.public_key()
    members = [_member(f.name, f.data) for f in files]
    manifest = {
        **header,
        "signing_key_id": key_id(public),
        "files": [{"name": f.name, "sha256": _digest(m[2]), "size": m[1], **f.description}
                  for f, m in zip(files, members, strict=True)],
    }
    manifest_bytes = msgspec.json.format(msgspec.json.encode(manifest), indent=2)
    signature = base64.b64encode(private_key.sign(manifest_bytes)) + b"\n"
    for name, data in ((MANIFEST, manifest_bytes), (SIGNATURE, signature), (PUBLIC_KEY, public_pem(public)),
                       (README, _README_TEXT.encode())):
        members.append(_member(name, data))
    return members, manifest_bytes


def build_package(files: Sequence[PackageFile], header: dict[str, Any],
                  private_key: Ed25519PrivateKey) -> tuple[bytes, bytes]:
    """The package bytes and the manifest bytes. File names must be unique and not collide with ours."""
    members, manifest = _package_members(files, header, private_key)
    buffer = io.BytesIO()
    _write_canonical(buffer, members)
    return buffer.getvalue(), manifest


def build_package_file(files: Sequence[PackageFile], header: dict[str, Any], private_key: Ed25519PrivateKey,
                       dest: Path) -> bytes:
    """Write the package to `dest`, streaming every file from disk (memory stays bounded); returns the manifest."""
    members, manifest = _package_members(files, header, private_key)
    with dest.open("wb") as target:
        _write_canonical(target, members)
    return manifest


@dataclass(frozen=True)
class Verified:
    manifest: dict[str, Any]
    signing_key_id: str
    files: int


def verify_package(package: bytes | Path, trusted_key: Ed25519PublicKey | None = None) -> Verified:
    """Raise ExportTampered unless the package is exactly what the platform signed. A package on disk is read in
    chunks, so its size does not bound what can be verified."""
    try:
        if isinstance(package, Path):
            with package.open("rb") as f:
                return _verify(f, trusted_key)
        return _verify(io.BytesIO(package), trusted_key)
    except ExportTampered:
        raise
    except Exception as exc:  # zipfile raises many types (even NotImplementedError) on bad input
        raise ExportTampered(f"not a readable package: {exc!r}") from exc


def _verify(source: IO[bytes], trusted_key: Ed25519PublicKey | None) -> Verified:
    archive = zipfile.ZipFile(source)
    infos = {info.filename: info for info in archive.infolist()}
    for required in (MANIFEST, SIGNATURE, PUBLIC_KEY):
        if required not in infos:
            raise ExportTampered(f"{required} is missing")
    small = {name: archive.read(infos[name]) for name in (MANIFEST, SIGNATURE, PUBLIC_KEY, README) if name in infos}
    try:
        embedded = serialization.load_pem_public_key(small[PUBLIC_KEY])
    except ValueError as exc:
        raise ExportTampered(f"the embedded key is unreadable: {exc}") from exc
    if not isinstance(embedded, Ed25519PublicKey):
        raise ExportTampered("the embedded key is not an Ed25519 key")
    key = trusted_key or embedded
    if trusted_key is not None and key_id(trusted_key) != key_id(embedded):
        raise ExportTampered("the package was not signed with the trusted platform key")
    try:
        key.verify(base64.b64decode(small[SIGNATURE].strip(), validate=True), small[MANIFEST])
    except (InvalidSignature, ValueError) as exc:
        raise ExportTampered("the manifest signature is invalid") from exc
    manifest = msgspec.json.decode(small[MANIFEST])
    if not isinstance(manifest, dict) or manifest.get("signing_key_id") != key_id(key):
        raise ExportTampered("the manifest names another signing key")
    listed = {f["name"]: f for f in manifest["files"]}
    extra = set(infos) - set(listed) - {MANIFEST, SIGNATURE, PUBLIC_KEY, README}
    if extra:
        raise ExportTampered(f"files not in the manifest: {sorted(extra)}")

    def opener(info: zipfile.ZipInfo) -> Callable[[], IO[bytes]]:
        return lambda: archive.open(info)

    for name, entry in listed.items():
        if name not in infos:
            raise ExportTampered(f"{name} is missing")
        if _digest(opener(infos[name])) != entry["sha256"]:
            raise ExportTampered(f"{name}: SHA-256 differs from the manifest")
    if small.get(README, _README_TEXT.encode()) != _README_TEXT.encode():
        raise ExportTampered(f"{README} was altered")
    # Member contents are authentic; the archive around them must be byte-for-byte the canonical one too. It is
    # rebuilt in a temporary file and compared by size and SHA-256, never held in memory.
    with tempfile.TemporaryFile() as rebuilt:
        _write_canonical(rebuilt, [(n, i.file_size, opener(i)) for n, i in infos.items()])
        size = rebuilt.tell()
        rebuilt.seek(0)
        canonical = _hash(rebuilt)
    source.seek(0, io.SEEK_END)
    if source.tell() != size:
        raise ExportTampered("the archive structure differs from the signed canonical form")
    source.seek(0)
    if _hash(source) != canonical:
        raise ExportTampered("the archive structure differs from the signed canonical form")
    return Verified(manifest=manifest, signing_key_id=key_id(key), files=len(listed))


def _load_public_key(path: Path) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(path.read_bytes())
    if not isinstance(key, Ed25519PublicKey):
        raise SystemExit(f"{path}: not an Ed25519 public key")
    return key


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dvr.export", description="Verify a signed evidence export.")
    commands = parser.add_subparsers(dest="command", required=True)
    verify = commands.add_parser("verify", help="verify a package offline")
    verify.add_argument("package", type=Path)
    verify.add_argument("--public-key", type=Path,
                        help="the platform's published key (PEM); without it only self-consistency is checked")
    args = parser.parse_args(argv)
    try:
        args.package.open("rb").close()
    except OSError as exc:
        sys.stderr.write(f"cannot read {args.package}: {exc}\n")
        return 2
    trusted = _load_public_key(args.public_key) if args.public_key else None
    try:
        result = verify_package(args.package, trusted)
    except ExportTampered as exc:
        sys.stdout.write(f"INVALID: {exc}\n")
        return 1
    m = result.manifest
    sys.stdout.write(
        f"VALID: {result.files} file(s), signed by {result.signing_key_id}"
        f"{'' if trusted else ' (key embedded in the package: compare it with the published key)'}\n"
        f"requisition {m.get('requisition', {}).get('procedure_number')} exported by "
        f"{m.get('exported_by', {}).get('name')} at {m.get('exported_at')}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
