"""Pure push decisions: TTL by urgency, the FCM error policy, the order of responder statuses, token shape."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mobile_push import rules
from mobile_push.events import ResponderStatus as S
from mobile_push.model import FcmError
from mobile_push.reference_client import new_fcm_token

BACKOFF = (0.5, 1.0, 2.0)


def test_ttl_is_capped_by_urgency_and_shrinks_with_time_spent() -> None:
    assert rules.ttl_for("immediate", 300, 0) == 60
    assert rules.ttl_for("urgent", 300, 0) == 300
    assert rules.ttl_for("routine", 3600, 0) == 900
    assert rules.ttl_for("urgent", 120, 30.5) == 89
    assert rules.ttl_for("urgent", 60, 90) == 0


@pytest.mark.parametrize(
    ("error", "action"),
    [
        (None, rules.Action.ACCEPTED),
        (FcmError.UNREGISTERED, rules.Action.DELETE_TOKEN),
        (FcmError.SENDER_ID_MISMATCH, rules.Action.DELETE_TOKEN),
        (FcmError.INVALID_TOKEN, rules.Action.DELETE_TOKEN),
        (FcmError.INVALID_ARGUMENT, rules.Action.FAIL),
        (FcmError.QUOTA_EXCEEDED, rules.Action.RETRY),
        (FcmError.UNAVAILABLE, rules.Action.RETRY),
        (FcmError.INTERNAL, rules.Action.RETRY),
        (FcmError.CREDENTIALS, rules.Action.ALARM),
        (FcmError.THIRD_PARTY_AUTH, rules.Action.ALARM),
    ],
)
def test_error_policy(error: FcmError | None, action: rules.Action) -> None:
    assert rules.decide(error, attempt=1, retry_after_s=None, backoff_s=BACKOFF, max_attempts=5).action is action


def test_backoff_grows_honours_a_longer_retry_after_and_gives_up() -> None:
    first = rules.decide(FcmError.UNAVAILABLE, attempt=1, retry_after_s=None, backoff_s=BACKOFF, max_attempts=5)
    third = rules.decide(FcmError.UNAVAILABLE, attempt=3, retry_after_s=None, backoff_s=BACKOFF, max_attempts=5)
    quota = rules.decide(FcmError.QUOTA_EXCEEDED, attempt=1, retry_after_s=7, backoff_s=BACKOFF, max_attempts=5)
    short = rules.decide(FcmError.QUOTA_EXCEEDED, attempt=3, retry_after_s=0.1, backoff_s=BACKOFF, max_attempts=5)
    last = rules.decide(FcmError.INTERNAL, attempt=5, retry_after_s=None, backoff_s=BACKOFF, max_attempts=5)
    assert (first.delay_s, third.delay_s, quota.delay_s, short.delay_s) == (0.5, 2.0, 7, 2.0)
    assert last.action is rules.Action.FAIL


def test_status_order_replays_and_skips() -> None:
    ok, replay, out = rules.StatusVerdict.OK, rules.StatusVerdict.REPLAY, rules.StatusVerdict.OUT_OF_ORDER
    assert rules.check_transition(None, S.DELIVERED) is ok
    assert rules.check_transition(None, S.ACKNOWLEDGED) is ok  # the human answer implies the receipt
    assert rules.check_transition(None, S.EN_ROUTE) is out
    assert rules.check_transition(S.DELIVERED, S.DELIVERED) is replay
    assert rules.check_transition(S.DELIVERED, S.ON_SCENE) is out
    assert rules.check_transition(S.ACKNOWLEDGED, S.DELIVERED) is out
    assert rules.check_transition(S.ACKNOWLEDGED, S.ON_SCENE) is ok
    assert rules.check_transition(S.ON_SCENE, S.EN_ROUTE) is out
    assert rules.check_transition(S.CLOSED, S.CLOSED) is replay


def test_staleness_and_token_shape() -> None:
    now = datetime.now(UTC)
    assert rules.is_stale(now - timedelta(seconds=901), now, 900)
    assert not rules.is_stale(now - timedelta(seconds=10), now, 900)
    assert rules.valid_token(new_fcm_token())
    assert not rules.valid_token("short")
    assert not rules.valid_token("x" * 120 + " ; drop")
