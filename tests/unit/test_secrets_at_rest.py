"""Secrets at rest and in configuration: sealed values bound to their row, no development secret in production,
`vigie secrets generate`, credentials scrubbed from every log line."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest
import structlog
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import ValidationError

from cli.main import parser
from cli.secrets import generate_secrets
from core.crypto import CAMERA_CREDENTIALS, SEALED_COLUMNS, TOTP_SEEDS, SecretBox, new_data_key
from core.logging import configure_logging, get_logger, redact_credentials
from core.objectstore_settings import ObjectStoreSettings
from core.settings import PROJECT_ROOT, DefaultSecretRefused, Settings

CAMERA_A, CAMERA_B = uuid.uuid4(), uuid.uuid4()


def legacy_seal(key_b64: str, plaintext: bytes, purpose: str) -> bytes:
    """A value as the platform sealed it before rows were bound (version 1: the purpose as AAD)."""
    import base64

    nonce = os.urandom(12)
    return b"\x01" + nonce + AESGCM(base64.urlsafe_b64decode(key_b64)).encrypt(nonce, plaintext, purpose.encode())


# --- item 17: sealed values bound to their row

def test_a_sealed_value_swapped_into_another_row_does_not_open() -> None:
    box = SecretBox(new_data_key())
    sealed = box.seal(b'{"username": "admin", "password": "x"}', column=CAMERA_CREDENTIALS, row_id=CAMERA_A)
    assert box.open(sealed, column=CAMERA_CREDENTIALS, row_id=CAMERA_A) == b'{"username": "admin", "password": "x"}'
    # Copied onto another camera's row, or into another sealed column of the same row: refused.
    with pytest.raises(InvalidTag):
        box.open(sealed, column=CAMERA_CREDENTIALS, row_id=CAMERA_B)
    with pytest.raises(InvalidTag):
        box.open(sealed, column=TOTP_SEEDS, row_id=CAMERA_A)
    with pytest.raises(InvalidTag):
        SecretBox(new_data_key()).open(sealed, column=CAMERA_CREDENTIALS, row_id=CAMERA_A)


def test_values_sealed_before_rows_were_bound_still_open() -> None:
    key = new_data_key()
    old = legacy_seal(key, b"seed", CAMERA_CREDENTIALS.legacy_purpose)
    box = SecretBox(key)
    assert not SecretBox.bound_to_row(old)
    assert box.open(old, column=CAMERA_CREDENTIALS, row_id=CAMERA_A) == b"seed"
    assert SecretBox.bound_to_row(box.seal(b"seed", column=CAMERA_CREDENTIALS, row_id=CAMERA_A))
    with pytest.raises(InvalidTag):  # still bound to its purpose
        box.open(old, column=TOTP_SEEDS, row_id=CAMERA_A)
    with pytest.raises(ValueError, match="version"):
        box.open(b"\x07" + old[1:], column=CAMERA_CREDENTIALS, row_id=CAMERA_A)


def test_every_sealed_column_names_a_distinct_place() -> None:
    places = {(c.table, c.column) for c in SEALED_COLUMNS}
    assert len(places) == len(SEALED_COLUMNS)
    assert all(c.column.endswith("_sealed") for c in SEALED_COLUMNS)


# --- item 9: no development secret in production

def test_production_refuses_the_development_data_key_and_nats_password() -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(environment="production")
    message = str(refused.value)
    assert "VIGIE_DATA_KEY" in message
    assert "VIGIE_NATS__PASSWORD" in message
    assert Settings(environment="dev").environment == "dev"
    assert Settings(environment="test").environment == "test"
    fresh = Settings(environment="production", data_key=new_data_key(), nats={"password": "x" * 32})
    assert fresh.environment == "production"


def test_refusal_never_prints_the_secrets_that_were_set() -> None:
    key = new_data_key()
    with pytest.raises(ValidationError) as refused:
        Settings(environment="production", data_key=key)  # the NATS password is still the default
    assert key not in str(refused.value)


def test_production_refuses_development_database_passwords_where_a_role_is_used() -> None:
    settings = Settings(environment="production", data_key=new_data_key(), nats={"password": "x" * 32},
                        database={"app_password": "a-real-one"})
    assert "a-real-one" in settings.database.app_dsn
    # The API holds no department password: it is refused only when a process takes the department role's DSN.
    with pytest.raises(DefaultSecretRefused, match="VIGIE_DATABASE__DEPARTMENT_PASSWORD"):
        _ = settings.database.department_dsn
    with pytest.raises(DefaultSecretRefused, match="VIGIE_DATABASE__OWNER_PASSWORD"):
        _ = settings.database.owner_dsn
    assert "vigie-department-dev" in Settings(environment="test").database.department_dsn


def test_production_refuses_the_development_presign_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIGIE_ENVIRONMENT", "production")
    with pytest.raises(ValidationError, match="VIGIE_OBJECTSTORE_PRESIGN_SECRET"):
        ObjectStoreSettings()
    monkeypatch.setenv("VIGIE_OBJECTSTORE_PRESIGN_SECRET", "x" * 43)
    assert ObjectStoreSettings().environment == "production"
    monkeypatch.setenv("VIGIE_ENVIRONMENT", "dev")
    monkeypatch.delenv("VIGIE_OBJECTSTORE_PRESIGN_SECRET")
    assert ObjectStoreSettings().environment == "dev"


def _child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIE_")}
    env.update(extra)
    return env


def test_a_process_refuses_to_start_in_production_on_development_secrets() -> None:
    done = subprocess.run([sys.executable, "-m", "api"], cwd=PROJECT_ROOT, capture_output=True, text=True,
                          timeout=60, env=_child_env(VIGIE_ENVIRONMENT="production", VIGIE_API__PORT="1"))
    assert done.returncode != 0
    assert "refuses development defaults" in done.stderr
    assert "VIGIE_DATA_KEY" in done.stderr


def test_secrets_generate_prints_fresh_values_production_accepts(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = generate_secrets()
    values = dict(line.split("=", 1) for line in lines if not line.startswith("#"))
    assert {"VIGIE_DATA_KEY", "VIGIE_OBJECTSTORE_PRESIGN_SECRET", "VIGIE_DATABASE__APP_PASSWORD",
            "VIGIE_DATABASE__DEPARTMENT_PASSWORD", "VIGIE_DATABASE__OWNER_PASSWORD", "VIGIE_NATS__PASSWORD"} <= {
        line.split("=", 1)[0] for line in lines if not line.startswith("#")}
    assert generate_secrets() != lines  # fresh each time
    SecretBox(values["VIGIE_DATA_KEY"])  # a valid 32-byte key
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("VIGIE_ENVIRONMENT", "production")
    settings = Settings()
    assert settings.database.app_dsn
    assert settings.database.department_dsn
    assert settings.database.owner_dsn
    assert ObjectStoreSettings().presign_secret.get_secret_value() == values["VIGIE_OBJECTSTORE_PRESIGN_SECRET"]
    # The command itself, through the CLI's parser.
    args = parser().parse_args(["secrets", "generate"])
    assert args.run.__name__ == "cmd_secrets_generate"
    rotate = parser().parse_args(["keys", "rotate-data-key", "--new-key", "-"])
    assert (rotate.run.__name__, rotate.new_key, rotate.old_key) == ("cmd_rotate_data_key", "-", None)


# --- item 12: credentials redacted wherever they appear in a log line

@pytest.mark.parametrize(("line", "secret"), [
    ("[concat @ 0x5] Impossible to open 'rtsp://admin:hunter2@10.0.0.5:554/main'", "hunter2"),
    ("rtsp://admin:p@ss@10.0.0.5/x", "p@ss"),
    ("error: RTSPS://viewer:s%3Acret@10.1.2.3 refused (401)", "s%3Acret"),
    ("connect postgresql://vigie_app:vigie-app-dev@127.0.0.1:5432/vigie failed", "vigie-app-dev"),
])
def test_credentials_are_redacted_anywhere_in_a_text(line: str, secret: str) -> None:
    redacted = redact_credentials(line)
    assert secret not in redacted
    assert "***@" in redacted


def test_texts_without_credentials_are_left_alone() -> None:
    for text in ["rtsp://10.0.0.5:554/main", "see rtsp://cam/x and admin@example.com", "no url", "a@b"]:
        assert redact_credentials(text) == text


@pytest.fixture
def json_logs() -> Iterator[None]:
    """Undoes configure_logging afterwards (the root handler and structlog's defaults)."""
    handlers, level = logging.getLogger().handlers[:], logging.getLogger().level
    yield
    structlog.reset_defaults()
    logging.getLogger().handlers[:] = handlers
    logging.getLogger().setLevel(level)


def test_every_log_line_is_scrubbed_of_credentials(capsys: pytest.CaptureFixture[str], json_logs: None) -> None:
    configure_logging("INFO")  # as a process does, on the stderr the test captures
    log = get_logger("test")
    try:
        raise OSError("Server returned 401 for 'rtsp://u:exception-secret@10.0.0.9/main'")
    except OSError:
        log.exception("camera.failed", url="rtsp://u:url-secret@10.0.0.9/main",
                      detail={"tail": ["ffmpeg: cannot open rtsp://u:nested-secret@10.0.0.9/main"]},
                      reason="at the end rtsp://u:end-secret@10.0.0.9")
    logging.getLogger("stdlib").warning("stdlib says rtsp://u:%s@10.0.0.9/main", "stdlib-secret")
    err = capsys.readouterr().err
    for secret in ("exception-secret", "url-secret", "nested-secret", "end-secret", "stdlib-secret"):
        assert secret not in err, err
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert lines[0]["url"] == "rtsp://***@10.0.0.9/main"
    assert re.search(r"rtsp://\*\*\*@10\.0\.0\.9", lines[1]["event"])
