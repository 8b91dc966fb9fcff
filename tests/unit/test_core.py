"""Core kernel: event codec, ids, secret sealing, settings from the environment."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import msgspec
import pytest
from cryptography.exceptions import InvalidTag

from core.crypto import CAMERA_CREDENTIALS, TOTP_SEEDS, SecretBox
from core.events import Event, EventCodec, EventDecodeError
from core.ids import new_id
from core.settings import Settings


class SomethingHappened(Event, frozen=True, kw_only=True):
    SCHEMA_VERSION = 2
    what: str
    schema_version: int = 2


TENANT = uuid.UUID(int=3)


def test_event_round_trip_keeps_id_tenant_and_time() -> None:
    codec = EventCodec(SomethingHappened)
    event = SomethingHappened(tenant_id=TENANT, what="door opened")
    decoded = codec.decode(codec.encode(event))
    assert decoded == event
    assert decoded.occurred_at.tzinfo is not None


def test_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        SomethingHappened(tenant_id=TENANT, what="x", occurred_at=datetime(2026, 1, 1))


@pytest.mark.parametrize(
    "payload",
    [
        b"{",
        b"[]",
        b'{"type": "Unknown", "schema_version": 1}',
        b'{"type": "SomethingHappened", "schema_version": 3, "tenant_id": "00000000-0000-0000-0000-000000000003"}',
        b'{"type": "SomethingHappened", "schema_version": 2, "tenant_id": "nope", "what": "x"}',
        b'{"type": "SomethingHappened", "schema_version": 2, "tenant_id": "00000000-0000-0000-0000-000000000003"}',
    ],
)
def test_undecodable_payloads_raise_a_clear_error(payload: bytes) -> None:
    with pytest.raises(EventDecodeError):
        EventCodec(SomethingHappened).decode(payload)


def test_schema_version_from_the_future_names_the_versions() -> None:
    payload = msgspec.json.encode(
        {
            "type": "SomethingHappened",
            "schema_version": 9,
            "tenant_id": str(TENANT),
            "what": "x",
            "event_id": str(uuid.uuid4()),
            "occurred_at": datetime.now(timezone(timedelta(hours=2))).isoformat(),
        }
    )
    with pytest.raises(EventDecodeError, match="schema_version 9 is not supported"):
        EventCodec(SomethingHappened).decode(payload)


def test_ids_are_time_ordered_uuid7() -> None:
    ids = [new_id() for _ in range(1000)]
    assert all(i.version == 7 for i in ids)
    assert len(set(ids)) == 1000
    assert [i.bytes[:6] for i in ids] == sorted(i.bytes[:6] for i in ids)


def test_sealed_secrets_are_bound_to_their_purpose() -> None:
    box = SecretBox(Settings().data_key.get_secret_value())
    sealed = box.seal(b"camera password", column=CAMERA_CREDENTIALS, row_id=TENANT)
    assert b"camera password" not in sealed
    assert box.open(sealed, column=CAMERA_CREDENTIALS, row_id=TENANT) == b"camera password"
    with pytest.raises(InvalidTag):
        box.open(sealed, column=TOTP_SEEDS, row_id=TENANT)


def test_nested_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIGIE_DATABASE__NAME", "elsewhere")
    monkeypatch.setenv("VIGIE_AUTH__ACCESS_TTL_S", "120")
    monkeypatch.setenv("VIGIE_DATABASE__APP_PASSWORD", "hunter2")
    settings = Settings()
    assert settings.database.name == "elsewhere"
    assert settings.auth.access_ttl_s == 120
    assert "hunter2" not in repr(settings)
    assert settings.database.app_dsn.endswith("@127.0.0.1:5432/elsewhere")


def test_now_is_utc() -> None:
    assert SomethingHappened(tenant_id=TENANT, what="x").occurred_at.utcoffset() == UTC.utcoffset(None)
