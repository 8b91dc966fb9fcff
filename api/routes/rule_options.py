"""The rules editor's catalogue for one camera: every analytic, what it needs drawn, and its legal gating today."""

from __future__ import annotations

import uuid

from litestar import Controller, get
from litestar.params import FromPath

from api.deps import PrincipalDep, ServicesDep
from inference.model import RuleOption


class RuleOptionsController(Controller):
    path = "/cameras/{camera_id:uuid}/rule-options"
    tags = ["detection"]

    @get("/", summary="Analytics offered on a camera: each one's event type, and why it cannot be enabled today if so")
    async def rule_options(
        self, principal: PrincipalDep, services: ServicesDep, camera_id: FromPath[uuid.UUID]
    ) -> list[RuleOption]:
        return await services.detection.rule_options(principal, camera_id)


ROUTES = [RuleOptionsController]
