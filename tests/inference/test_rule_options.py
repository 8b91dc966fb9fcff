"""The rules editor's catalogue: each analytic's gating agrees with what `check_rule` lets through."""

from __future__ import annotations

import uuid
from datetime import date

import pytest

from inference.errors import RuleNotAuthorised
from inference.model import LegalBasis, RuleParams, RuleType, Zone
from inference.rules import LEGAL_REFERENCE, check_rule, rule_option

TODAY = date(2026, 12, 3)
LABELS = frozenset({"Person", "Fire"})
FORBIDDEN_ZONE = LegalBasis(event_type="forbidden_zone", valid_from=date(2026, 1, 1), valid_until=date(2026, 12, 31))


def test_a_basis_valid_today_makes_an_analytic_available() -> None:
    option = rule_option(RuleType.INTRUSION, [FORBIDDEN_ZONE], TODAY, LABELS)
    assert option.available
    assert option.needs == "zone"
    assert option.reason is None
    assert rule_option(RuleType.LINE_CROSSING, [FORBIDDEN_ZONE], TODAY, LABELS).needs == "line"


def test_no_basis_or_one_outside_its_window_greys_it_out_with_the_text() -> None:
    lapsed = LegalBasis(event_type="wrong_way", valid_from=date(2025, 1, 1), valid_until=date(2025, 12, 31))
    option = rule_option(RuleType.WRONG_WAY, [FORBIDDEN_ZONE, lapsed], TODAY, LABELS)
    assert not option.available
    assert option.event_type == "wrong_way"
    assert option.reference == LEGAL_REFERENCE
    assert option.reason is not None
    assert "wrong_way" in option.reason
    quay = Zone(id=uuid.uuid4(), tenant_id=uuid.uuid4(), camera_id=uuid.uuid4(), name="Quai", kind="zone",
                points=((0.0, 0.0), (1.0, 0.0), (1.0, 1.0)))
    with pytest.raises(RuleNotAuthorised):
        check_rule("wrong_way", RuleParams(), zone=quay, bases=[lapsed], today=TODAY, model_labels=LABELS)


def test_equipment_health_needs_no_basis_and_a_model_class_is_required_where_the_rule_needs_one() -> None:
    assert rule_option(RuleType.CAMERA_TAMPER, [], TODAY, LABELS).available
    fire = LegalBasis(event_type="fire_start", valid_from=TODAY, valid_until=TODAY)
    assert rule_option(RuleType.FIRE_START, [fire], TODAY, LABELS).available
    weapon = LegalBasis(event_type="weapon", valid_from=TODAY, valid_until=TODAY)
    no_weapon_class = rule_option(RuleType.WEAPON, [weapon], TODAY, LABELS)
    assert not no_weapon_class.available
    assert no_weapon_class.reference is None
    assert rule_option(RuleType.CAMERA_TAMPER, [], TODAY, None).available is False
