"""Pure tenancy rules: camera URLs, INSEE codes, the legal retention cap, authorisations, prohibited analytics."""

from __future__ import annotations

from datetime import date

import pytest

from core.errors import InvalidInput, LegalRuleViolation
from tenants import rules


@pytest.mark.parametrize("url", ["rtsp://10.0.0.1/stream", "rtsps://cam.cergy.fr:322/h264", "rtsp://[::1]:554/x"])
def test_valid_camera_urls(url: str) -> None:
    assert rules.check_rtsp_url(url, field="main_stream_url") == url


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1/",
        "rtsp://",
        "rtsp://u:p@h/x",
        "rtsp://h:0/x",
        "rtsp://h /x",
        "file:///etc/passwd",
        "rtsp://h:70000/x",
    ],
)
def test_invalid_camera_urls(url: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        rules.check_rtsp_url(url, field="main_stream_url")
    assert caught.value.field == "main_stream_url"


def test_retention_cap_cites_the_code() -> None:
    assert rules.check_retention_days(30, field="r") == 30
    with pytest.raises(LegalRuleViolation) as caught:
        rules.check_retention_days(31, field="r")
    assert caught.value.reference == "CSI L252-5"


def test_effective_retention_is_the_minimum() -> None:
    assert rules.effective_retention_days(20, 15) == 15
    assert rules.effective_retention_days(10, 30) == 10
    assert rules.effective_retention_days(30, None) == 30


@pytest.mark.parametrize("code", ["95127", "2A004", "2B033", "01001"])
def test_insee_format(code: str) -> None:
    assert rules.check_insee_format(code) == code


@pytest.mark.parametrize("code", ["9512", "951270", "2C001", "ABCDE"])
def test_insee_format_refused(code: str) -> None:
    with pytest.raises(InvalidInput):
        rules.check_insee_format(code)


def test_purposes_must_be_those_of_l251_2() -> None:
    assert rules.check_purposes(["crime_prevention", "crime_prevention"]) == ["crime_prevention"]
    for bad in ([], ["marketing"]):
        with pytest.raises(LegalRuleViolation):
            rules.check_purposes(bad)


def test_authorisation_window() -> None:
    today = date(2026, 11, 26)
    rules.check_authorisation_window(date(2024, 2, 29), date(2029, 2, 28), today=today)
    with pytest.raises(LegalRuleViolation):  # more than five years
        rules.check_authorisation_window(date(2024, 1, 1), date(2029, 1, 2), today=today)
    with pytest.raises(LegalRuleViolation):  # already expired
        rules.check_authorisation_window(date(2020, 1, 1), date(2024, 1, 1), today=today)
    with pytest.raises(InvalidInput):
        rules.check_authorisation_window(date(2026, 1, 1), date(2026, 1, 1), today=today)


@pytest.mark.parametrize("kind", ["face_recognition", "Licence_Plate_Reading", "biometric_identification"])
def test_biometric_analytics_can_never_be_enabled(kind: str) -> None:
    with pytest.raises(LegalRuleViolation) as caught:
        rules.check_event_type(kind)
    assert "EU AI Act" in caught.value.detail


def test_the_eight_events_of_the_decree() -> None:
    assert len(rules.EVENT_TYPES) == 8
    for event_type in rules.EVENT_TYPES:
        assert rules.check_event_type(event_type) == event_type
    with pytest.raises(InvalidInput):
        rules.check_event_type("loitering_detection_v2")
