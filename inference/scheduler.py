"""Weighted fair sharing of the detector across tenants, and per-tenant detector-seconds metering for billing.

Start-time fair queuing: each tenant has a virtual clock that advances by 1/weight per frame it gets; the next
slot goes to the backlogged tenant whose clock is lowest. An idle tenant's clock is brought up to the present,
so it cannot hoard credit, and a commune with 200 cameras cannot starve one with 5: both get slots in the ratio
of their weights, whatever their camera counts. Inside a tenant, the camera served longest ago goes first.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar


class Candidate(Protocol):
    """A camera with a frame ready for the detector."""

    @property
    def camera_id(self) -> uuid.UUID: ...

    @property
    def tenant_id(self) -> uuid.UUID: ...

    @property
    def weight(self) -> float: ...


C = TypeVar("C", bound=Candidate)


class FairScheduler:
    """Picks up to `capacity` ready cameras per detector batch."""

    def __init__(self) -> None:
        self._virtual: dict[uuid.UUID, float] = {}
        self._now = 0.0
        # A service sequence number per camera (not a round number), so cameras served in the same batch stay
        # ordered and round-robin inside a tenant is exact.
        self._last_served: dict[uuid.UUID, int] = {}
        self._sequence = 0

    def select(self, ready: Sequence[C], capacity: int) -> list[C]:
        queues: dict[uuid.UUID, list[C]] = defaultdict(list)
        for candidate in ready:
            queues[candidate.tenant_id].append(candidate)
        for tenant, queue in queues.items():
            queue.sort(key=lambda c: self._last_served.get(c.camera_id, -1))
            self._virtual[tenant] = max(self._virtual.get(tenant, 0.0), self._now)
        chosen: list[C] = []
        while queues and len(chosen) < capacity:
            tenant = min(queues, key=lambda t: (self._virtual[t], str(t)))
            candidate = queues[tenant].pop(0)
            chosen.append(candidate)
            self._now = max(self._now, self._virtual[tenant])
            self._virtual[tenant] += 1.0 / max(candidate.weight, 1e-6)
            self._sequence += 1
            self._last_served[candidate.camera_id] = self._sequence
            if not queues[tenant]:
                del queues[tenant]
        return chosen

    def forget_camera(self, camera_id: uuid.UUID) -> None:
        self._last_served.pop(camera_id, None)


@dataclass
class TenantUsage:
    detector_seconds: float = 0.0
    frames: int = 0


class UsageMeter:
    """Accumulates detector time per tenant; a batch's time is split evenly among the frames in it."""

    def __init__(self) -> None:
        self._pending: dict[uuid.UUID, TenantUsage] = defaultdict(TenantUsage)
        self.totals: dict[uuid.UUID, TenantUsage] = defaultdict(TenantUsage)

    def record_batch(self, tenants: Sequence[uuid.UUID], seconds: float) -> None:
        if not tenants:
            return
        share = seconds / len(tenants)
        for tenant in tenants:
            for usage in (self._pending[tenant], self.totals[tenant]):
                usage.detector_seconds += share
                usage.frames += 1

    def drain(self) -> dict[uuid.UUID, TenantUsage]:
        """What accumulated since the last drain (to be written to the database), and reset it."""
        pending, self._pending = dict(self._pending), defaultdict(TenantUsage)
        return pending

    def restore(self, usage: dict[uuid.UUID, TenantUsage]) -> None:
        """Put back a drained batch whose write failed, so no metered second is lost."""
        for tenant, value in usage.items():
            self._pending[tenant].detector_seconds += value.detector_seconds
            self._pending[tenant].frames += value.frames
