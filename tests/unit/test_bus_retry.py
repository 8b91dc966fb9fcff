"""Publishing through a leader change: which JetStream answers are sent again under the same Nats-Msg-Id."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from nats.js.api import PubAck
from nats.js.errors import APIError

from core.bus import Bus


class Answers:
    """Stands for the JetStream context: answers each publish with the next of `answers` (raised if an error)."""

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.msg_ids: list[str] = []

    async def publish(self, subject: str, payload: bytes, **options: Any) -> PubAck:
        self.msg_ids.append(options["headers"]["Nats-Msg-Id"])
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        assert isinstance(answer, PubAck)
        return answer


def bus_answering(*answers: Any) -> tuple[Bus, Answers]:
    bus = Bus.__new__(Bus)
    bus._publish_retry_s = 5.0
    bus.js = Answers(*answers)  # type: ignore[assignment]
    return bus, bus.js  # type: ignore[return-value]


def test_a_publish_answered_duplicate_in_process_is_sent_again_and_acknowledged() -> None:
    in_process = APIError(code=409, err_code=10158, description="duplicate message id is in process")
    ack = PubAck(stream="ALERTS", seq=7, duplicate=True)
    bus, js = bus_answering(in_process, ack)
    assert asyncio.run(bus.publish_encoded("alerts.x", b"{}", msg_id="m-1")) is ack
    assert js.msg_ids == ["m-1", "m-1"]


def test_other_jetstream_refusals_are_not_retried() -> None:
    refused = APIError(code=400, err_code=10060, description="expected stream does not match")
    bus, js = bus_answering(refused, PubAck(stream="ALERTS", seq=1))
    with pytest.raises(APIError):
        asyncio.run(bus.publish_encoded("alerts.x", b"{}", msg_id="m-2"))
    assert js.msg_ids == ["m-2"]
