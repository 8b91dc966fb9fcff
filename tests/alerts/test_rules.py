"""Pure alert decisions: dedupe and cooldown, state machine, routing by commune, event type and hour."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from alerts import rules
from alerts.errors import AlertClosed, InvalidTransition

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _recent(state: str = "new", tracks: frozenset[int] = frozenset({1}), raised: datetime = T0) -> rules.Recent:
    return rules.Recent(uuid.uuid4(), state, tracks, raised, raised)


def test_same_track_inside_window_folds_and_outside_raises() -> None:
    policy = rules.Policy("intrusion", 3, dedupe_window_s=120, cooldown_s=10, sla_claim_s=60)
    recent = _recent()
    assert rules.fold_into(recent, frozenset({1}), T0 + timedelta(seconds=100), policy) == recent.alert_id
    assert rules.fold_into(recent, frozenset({1}), T0 + timedelta(seconds=121), policy) is None
    assert rules.fold_into(None, frozenset({1}), T0, policy) is None


def test_cooldown_absorbs_new_tracks_then_lets_them_through() -> None:
    policy = rules.Policy("intrusion", 3, dedupe_window_s=120, cooldown_s=60, sla_claim_s=60)
    recent = _recent()
    assert rules.fold_into(recent, frozenset({2}), T0 + timedelta(seconds=30), policy) == recent.alert_id
    assert rules.fold_into(recent, frozenset({2}), T0 + timedelta(seconds=61), policy) is None


def test_closed_alert_never_absorbs_and_dismissed_only_its_own_track() -> None:
    policy = rules.Policy("intrusion", 3, dedupe_window_s=120, cooldown_s=60, sla_claim_s=60)
    closed, dismissed = _recent("closed"), _recent("dismissed")
    assert rules.fold_into(closed, frozenset({1}), T0 + timedelta(seconds=5), policy) is None
    assert rules.fold_into(dismissed, frozenset({1}), T0 + timedelta(seconds=5), policy) == dismissed.alert_id
    assert rules.fold_into(dismissed, frozenset({9}), T0 + timedelta(seconds=5), policy) is None


def test_state_machine_refuses_double_claim_and_actions_on_closed_alerts() -> None:
    assert rules.transition("new", "claim") == "claimed"
    with pytest.raises(InvalidTransition):
        rules.transition("claimed", "claim")
    with pytest.raises(InvalidTransition):
        rules.transition("claimed", "dispatch")  # a human must verify before anything reaches a force
    for action in ("claim", "verify", "dispatch", "close", "dismiss"):
        with pytest.raises(AlertClosed):
            rules.transition("closed", action)
    assert rules.transition("verified", "dispatch") == "dispatched"


def _forces() -> tuple[list[rules.ForceRef], uuid.UUID, uuid.UUID]:
    commune_a, commune_b = uuid.uuid4(), uuid.uuid4()
    forces = [
        rules.ForceRef(uuid.uuid4(), "police_nationale", "CSP", None, frozenset({"95127"})),
        rules.ForceRef(uuid.uuid4(), "gendarmerie", "Brigade", None, frozenset({"95370", "95355"})),
        rules.ForceRef(uuid.uuid4(), "police_municipale", "PM B", commune_b, frozenset({"95370"})),
        rules.ForceRef(uuid.uuid4(), "sdis", "SDIS", None, frozenset({"95127", "95370"})),
    ]
    return forces, commune_a, commune_b


def test_routing_state_force_municipal_police_when_opted_in_and_sdis_for_fire() -> None:
    forces, commune_a, commune_b = _forces()
    kinds = lambda chosen: [f.kind for f in chosen]  # noqa: E731
    base = {"local_minute": 600, "forces": forces, "rules": []}
    assert kinds(rules.route(insee_code="95127", event_type="forbidden_zone", tenant_id=commune_a,
                             municipal_police_opt_in=True, **base)) == ["police_nationale"]  # type: ignore[arg-type]
    assert kinds(rules.route(insee_code="95370", event_type="forbidden_zone", tenant_id=commune_b,
                             municipal_police_opt_in=True, **base)) == ["gendarmerie", "police_municipale"]  # type: ignore[arg-type]
    assert kinds(rules.route(insee_code="95370", event_type="fire_start", tenant_id=commune_b,
                             municipal_police_opt_in=False, **base)) == ["gendarmerie", "sdis"]  # type: ignore[arg-type]
    assert rules.route(insee_code="95370", event_type="camera_offline", tenant_id=commune_b,
                       municipal_police_opt_in=True, **base) == []  # type: ignore[arg-type]


def test_routing_rules_apply_by_hour_across_midnight() -> None:
    forces, _, commune_b = _forces()
    pm = forces[2]
    night_off = rules.RoutingRule("95370", None, 22 * 60, 6 * 60, pm.id, "remove")
    args = {"insee_code": "95370", "event_type": "forbidden_zone", "tenant_id": commune_b,
            "municipal_police_opt_in": True, "forces": forces, "rules": [night_off]}
    assert pm in rules.route(local_minute=12 * 60, **args)  # type: ignore[arg-type]
    assert pm not in rules.route(local_minute=23 * 60, **args)  # type: ignore[arg-type]
    assert pm not in rules.route(local_minute=2 * 60, **args)  # type: ignore[arg-type]


def test_municipal_police_only_for_its_commune_and_escalation_widens_by_one() -> None:
    forces, commune_a, commune_b = _forces()
    assert rules.municipal_police_may_receive(forces[2], commune_b)
    assert not rules.municipal_police_may_receive(forces[2], commune_a)
    a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    assert rules.next_officers([a, b, c], [a], 1) == (a, b)
    assert rules.next_officers([a, b, c], [], 1) == ()
