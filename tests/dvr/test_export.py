"""Signed export packages: a valid package verifies offline, and every single-bit change is detected."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from dvr.errors import ExportTampered
from dvr.export import PackageFile, build_package, main, public_pem, verify_package


@pytest.fixture(scope="module")
def signed() -> tuple[bytes, Ed25519PrivateKey]:
    key = Ed25519PrivateKey.generate()
    files = [PackageFile("01_cam.mp4", random.Random(1).randbytes(3000), {"camera_id": "c1"}),
             PackageFile("02_cam.mp4", random.Random(2).randbytes(2000), {"camera_id": "c2"})]
    package, _ = build_package(files, {"export_id": "e1", "requisition": {"procedure_number": "2026/123"},
                                       "exported_by": {"name": "Agent A"}}, key)
    return package, key


def test_a_genuine_package_verifies_against_the_platform_key(signed: tuple[bytes, Ed25519PrivateKey]) -> None:
    package, key = signed
    result = verify_package(package, key.public_key())
    assert result.files == 2
    assert result.manifest["requisition"]["procedure_number"] == "2026/123"
    assert [f["name"] for f in result.manifest["files"]] == ["01_cam.mp4", "02_cam.mp4"]


def test_every_single_bit_flip_is_detected(signed: tuple[bytes, Ed25519PrivateKey]) -> None:
    package, key = signed
    rng = random.Random(42)
    # Every byte of the archive, one random bit each: headers, contents, manifest, signature, directory.
    for offset in range(len(package)):
        tampered = bytearray(package)
        tampered[offset] ^= 1 << rng.randrange(8)
        with pytest.raises(ExportTampered):
            verify_package(bytes(tampered), key.public_key())


def test_a_package_resigned_with_another_key_is_refused(signed: tuple[bytes, Ed25519PrivateKey]) -> None:
    _, key = signed
    forger = Ed25519PrivateKey.generate()
    forged, _ = build_package([PackageFile("01_cam.mp4", b"fake", {})], {"export_id": "e1"}, forger)
    verify_package(forged)  # self-consistent...
    with pytest.raises(ExportTampered, match="trusted platform key"):
        verify_package(forged, key.public_key())  # ...but not from the platform


def test_cli_verify_exit_codes(signed: tuple[bytes, Ed25519PrivateKey], tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    package, key = signed
    good, bad, pem = tmp_path / "p.zip", tmp_path / "bad.zip", tmp_path / "key.pem"
    good.write_bytes(package)
    bad.write_bytes(package[:-1] + bytes([package[-1] ^ 0x80]))
    pem.write_bytes(public_pem(key.public_key()))
    assert main(["verify", str(good), "--public-key", str(pem)]) == 0
    assert "VALID: 2 file(s)" in capsys.readouterr().out
    assert main(["verify", str(bad), "--public-key", str(pem)]) == 1
    assert capsys.readouterr().out.startswith("INVALID")
    assert main(["verify", str(tmp_path / "missing.zip")]) == 2
