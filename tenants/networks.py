"""Use cases of the department's camera networks: the allow-list a camera's stream address must fall in, managed by
department admins (journaled) and read by whoever manages cameras."""

from __future__ import annotations

from core.db import Database
from core.errors import InvalidInput
from core.tenancy import DEPARTMENT_ADMINS, STAFF_READERS, Principal, require_role
from journal.service import JournalService
from tenants import rules
from tenants.model import CameraNetwork, CameraNetworksInput
from tenants.network_repository import CameraNetworkRepository


class CameraNetworkService:
    """The camera networks of the principal's department."""

    def __init__(self, db: Database, journal: JournalService | None = None,
                 repository: CameraNetworkRepository | None = None) -> None:
        self._db = db
        self._journal = journal or JournalService()
        self._repo = repository or CameraNetworkRepository()

    async def networks(self, principal: Principal) -> list[CameraNetwork]:
        require_role(principal, STAFF_READERS, "read the camera networks")
        async with self._db.transaction(principal, readonly=True) as conn:
            return await self._repo.of_department(conn, principal.department_id)

    async def replace(self, principal: Principal, data: CameraNetworksInput) -> list[CameraNetwork]:
        """The department's whole list, replacing the previous one. Cameras already outside it keep recording; their
        addresses are checked again whenever they change."""
        require_role(principal, DEPARTMENT_ADMINS, "declare camera networks")
        checked: list[tuple[rules.Network, str]] = []
        for index, item in enumerate(data.networks):
            network = rules.check_camera_network(item.network, field=f"networks[{index}].network")
            if any(network == seen for seen, _ in checked):
                raise InvalidInput(f"{network} is listed twice", field=f"networks[{index}].network")
            checked.append((network, item.label))
        async with self._db.transaction(principal) as conn:
            before = {n.network for n in await self._repo.of_department(conn, principal.department_id)}
            await self._repo.replace(conn, principal.department_id, principal.user_id, checked)
            after = await self._repo.of_department(conn, principal.department_id)
            now = {n.network for n in after}
            await self._journal.note(
                conn, principal, "camera_networks.replace", ("department", principal.department_id),
                tenant_id=principal.home_tenant_id, added=sorted(now - before), removed=sorted(before - now),
            )
        return after
