"""Signed evidence packages: a canonical ZIP of clips plus a manifest signed with Ed25519, and its offline verifier.

`python -m dvr.export verify PACKAGE [--public-key KEY.pem]` checks the signature, every file's SHA-256, that the
package holds exactly the listed files, and that the archive bytes are the canonical ones: any 1-bit change fails.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import sys
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from dvr.errors import ExportTampered

MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
PUBLIC_KEY = "signing-key.pem"
README = "LISEZMOI.txt"
# Fixed member metadata: the same content always gives the same archive bytes, so the bytes can be re-derived.
_EPOCH = (1980, 1, 1, 0, 0, 0)
_README_TEXT = (
    "Export de preuves video (Vigie).\n"
    "manifest.json liste chaque fichier avec son empreinte SHA-256, la camera, l'intervalle, la requisition et\n"
    "l'auteur de l'export; manifest.sig est la signature Ed25519 de manifest.json par la cle signing-key.pem.\n"
    "Verification hors ligne: python -m dvr.export verify <paquet.zip> --public-key <cle de la plateforme>.\n"
)


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "ed25519:" + hashlib.sha256(raw).hexdigest()[:16]


def public_pem(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


@dataclass(frozen=True)
class PackageFile:
    """A file of the package and what the manifest says about it."""

    name: str
    data: bytes
    description: dict[str, Any]


def _canonical_zip(members: Sequence[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, data in sorted(members):
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.compress_type = zipfile.ZIP_STORED
            info.external_attr = 0o100644 << 16
            info.create_system = 3
            archive.writestr(info, data)
    return buffer.getvalue()


def build_package(files: Sequence[PackageFile], header: dict[str, Any],
                  private_key: Ed25519PrivateKey) -> tuple[bytes, bytes]:
    """The package bytes and the manifest bytes. File names must be unique and not collide with ours."""
    names = [f.name for f in files]
    if len(set(names)) != len(names) or {MANIFEST, SIGNATURE, PUBLIC_KEY, README} & set(names):
        raise ValueError("package file names must be unique and not reserved")
    public = private_key.public_key()
    manifest = {
        **header,
        "signing_key_id": key_id(public),
        "files": [{"name": f.name, "sha256": hashlib.sha256(f.data).hexdigest(), "size": len(f.data),
                   **f.description} for f in files],
    }
    manifest_bytes = msgspec.json.format(msgspec.json.encode(manifest), indent=2)
    signature = base64.b64encode(private_key.sign(manifest_bytes)) + b"\n"
    members = [(f.name, f.data) for f in files]
    members += [(MANIFEST, manifest_bytes), (SIGNATURE, signature), (PUBLIC_KEY, public_pem(public)),
                (README, _README_TEXT.encode())]
    return _canonical_zip(members), manifest_bytes


@dataclass(frozen=True)
class Verified:
    manifest: dict[str, Any]
    signing_key_id: str
    files: int


def verify_package(package: bytes, trusted_key: Ed25519PublicKey | None = None) -> Verified:
    """Raise ExportTampered unless the package is exactly what the platform signed."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(package))
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    except Exception as exc:  # zipfile raises many types (even NotImplementedError) on bad input
        raise ExportTampered(f"not a readable package: {exc!r}") from exc
    for required in (MANIFEST, SIGNATURE, PUBLIC_KEY):
        if required not in members:
            raise ExportTampered(f"{required} is missing")
    try:
        embedded = serialization.load_pem_public_key(members[PUBLIC_KEY])
    except ValueError as exc:
        raise ExportTampered(f"the embedded key is unreadable: {exc}") from exc
    if not isinstance(embedded, Ed25519PublicKey):
        raise ExportTampered("the embedded key is not an Ed25519 key")
    key = trusted_key or embedded
    if trusted_key is not None and key_id(trusted_key) != key_id(embedded):
        raise ExportTampered("the package was not signed with the trusted platform key")
    try:
        key.verify(base64.b64decode(members[SIGNATURE].strip(), validate=True), members[MANIFEST])
    except (InvalidSignature, ValueError) as exc:
        raise ExportTampered("the manifest signature is invalid") from exc
    manifest = msgspec.json.decode(members[MANIFEST])
    if not isinstance(manifest, dict) or manifest.get("signing_key_id") != key_id(key):
        raise ExportTampered("the manifest names another signing key")
    listed = {f["name"]: f for f in manifest["files"]}
    extra = set(members) - set(listed) - {MANIFEST, SIGNATURE, PUBLIC_KEY, README}
    if extra:
        raise ExportTampered(f"files not in the manifest: {sorted(extra)}")
    for name, entry in listed.items():
        if name not in members:
            raise ExportTampered(f"{name} is missing")
        if hashlib.sha256(members[name]).hexdigest() != entry["sha256"]:
            raise ExportTampered(f"{name}: SHA-256 differs from the manifest")
    if members.get(README, _README_TEXT.encode()) != _README_TEXT.encode():
        raise ExportTampered(f"{README} was altered")
    # Member contents are authentic; the archive around them must be byte-for-byte the canonical one too.
    if _canonical_zip(list(members.items())) != package:
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
        data = args.package.read_bytes()
    except OSError as exc:
        sys.stderr.write(f"cannot read {args.package}: {exc}\n")
        return 2
    trusted = _load_public_key(args.public_key) if args.public_key else None
    try:
        result = verify_package(data, trusted)
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
