"""Use cases of the catalogue and of contracts: issuing body, plans and prices, conventions, each camera's plan."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import msgspec
from stdnum.fr import siret

from billing.access import BILLING_READERS, BILLING_RUNNERS, CATALOGUE_ADMINS, BillingBase
from billing.errors import AlreadyInvoiced, BadSiret, OverlappingCameraPlan, OverlappingContract
from billing.model import (
    CameraPlan,
    CameraPlanChange,
    Contract,
    ContractCreate,
    ContractUpdate,
    Issuer,
    IssuerInput,
    Plan,
    PlanCreate,
    PriceInput,
)
from core.errors import Conflict, InvalidInput, NotFound
from core.ids import new_id
from core.tenancy import Principal

_DECIMAL_FIELDS = {"availability_target", "sla_credit_percent_per_point", "sla_credit_cap_percent"}


def check_siret(value: str, field: str) -> None:
    if not siret.is_valid(value):
        raise BadSiret(field)


def _decimal(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


class CatalogueCases(BillingBase):
    # --- the issuing body
    async def issuer(self, principal: Principal) -> Issuer:
        self._require(principal, BILLING_RUNNERS, "read the issuing body")
        async with self._db.transaction(principal, readonly=True) as conn:
            found = await self._catalogue.issuer(conn, principal.department_id)
        if found is None:
            raise NotFound("the issuing body is not set yet")
        return found

    async def set_issuer(self, principal: Principal, data: IssuerInput) -> Issuer:
        self._require(principal, CATALOGUE_ADMINS, "set the issuing body")
        check_siret(data.siret, "siret")
        async with self._db.transaction(principal) as conn:
            issuer = await self._catalogue.upsert_issuer(
                conn, principal.department_id, msgspec.structs.asdict(data), principal.user_id
            )
            await self._journal.note(conn, principal, "billing.issuer.set", ("department", principal.department_id),
                                     tenant_id=principal.home_tenant_id, siret=data.siret)
        return issuer

    # --- plans and prices
    async def plans(self, principal: Principal) -> list[Plan]:
        self._require(principal, BILLING_READERS, "read the plans")
        async with self._db.transaction(principal, readonly=True) as conn:
            return await self._catalogue.plans(conn)

    async def plan(self, principal: Principal, plan_id: uuid.UUID) -> Plan:
        self._require(principal, BILLING_READERS, "read the plans")
        async with self._db.transaction(principal, readonly=True) as conn:
            found = await self._catalogue.plans(conn, plan_id)
        if not found:
            raise NotFound("no such plan")
        return found[0]

    async def create_plan(self, principal: Principal, data: PlanCreate) -> Plan:
        self._require(principal, CATALOGUE_ADMINS, "create plans")
        plan_id = new_id()
        async with self._db.transaction(principal) as conn:
            try:
                await self._catalogue.insert_plan(
                    conn, plan_id, principal.department_id, data.code, data.name, data.description
                )
            except asyncpg.UniqueViolationError as exc:
                raise Conflict(f"a plan coded {data.code} already exists") from exc
            await self._insert_price(conn, principal, plan_id, data.price)
            await self._journal.note(conn, principal, "billing.plan.create", ("billing_plan", plan_id),
                                     tenant_id=principal.home_tenant_id, code=data.code,
                                     monthly_price_ht=data.price.monthly_price_ht)
            (plan,) = await self._catalogue.plans(conn, plan_id)
        return plan

    async def add_price(self, principal: Principal, plan_id: uuid.UUID, data: PriceInput) -> Plan:
        """A new price from its date on. Dated on or before a day an issued invoice billed on this plan: 409."""
        self._require(principal, CATALOGUE_ADMINS, "change prices")
        async with self._db.transaction(principal) as conn:
            if not await self._catalogue.plans(conn, plan_id):
                raise NotFound("no such plan")
            # Exclusive against runs (which take it shared): no run prices these days while the check holds.
            await self._catalogue.lock_catalogue(conn, principal.department_id)
            number = await self._catalogue.plan_invoiced_through(conn, plan_id, data.effective_from)
            if number is not None:
                raise AlreadyInvoiced(f"a price effective {data.effective_from}", number)
            await self._insert_price(conn, principal, plan_id, data)
            await self._journal.note(conn, principal, "billing.price.add", ("billing_plan", plan_id),
                                     tenant_id=principal.home_tenant_id, effective_from=data.effective_from,
                                     monthly_price_ht=data.monthly_price_ht)
            (plan,) = await self._catalogue.plans(conn, plan_id)
        return plan

    async def _insert_price(
        self, conn: asyncpg.Connection, principal: Principal, plan_id: uuid.UUID, data: PriceInput
    ) -> None:
        try:
            await self._catalogue.insert_price(
                conn,
                price_id=new_id(),
                department_id=principal.department_id,
                plan_id=plan_id,
                effective_from=data.effective_from,
                monthly=Decimal(data.monthly_price_ht),
                detector_hour=_decimal(data.detector_hour_price),
                storage_gb_day=_decimal(data.storage_gb_day_price),
                user_id=principal.user_id,
            )
        except asyncpg.UniqueViolationError as exc:
            raise Conflict(f"this plan already has a price effective {data.effective_from}") from exc

    # --- contracts
    async def contracts(
        self, principal: Principal, tenant_id: uuid.UUID | None, after: uuid.UUID | None, limit: int
    ) -> list[Contract]:
        self._require(principal, BILLING_READERS, "read contracts")
        async with self._db.transaction(principal, readonly=True) as conn:
            return await self._catalogue.contracts(conn, tenant_id, after, limit)

    async def contract(self, principal: Principal, contract_id: uuid.UUID) -> Contract:
        self._require(principal, BILLING_READERS, "read contracts")
        async with self._db.transaction(principal, readonly=True) as conn:
            found = await self._catalogue.contract(conn, contract_id)
        if found is None:
            raise NotFound("no such contract")
        return found

    async def create_contract(self, principal: Principal, data: ContractCreate) -> Contract:
        self._require(principal, CATALOGUE_ADMINS, "create contracts")
        check_siret(data.buyer_siret, "buyer_siret")
        if data.end_date is not None and data.end_date < data.start_date:
            raise InvalidInput("a contract ends on or after its start", field="end_date")
        values: dict[str, Any] = {
            "id": new_id(),
            "department_id": principal.department_id,
            "created_by": principal.user_id,
            **{k: Decimal(v) if k in _DECIMAL_FIELDS else v for k, v in msgspec.structs.asdict(data).items()},
        }
        async with self._db.transaction(principal) as conn:
            tenant = await self._catalogue.tenant(conn, data.tenant_id)
            if tenant is None or tenant["department_id"] != principal.department_id:
                raise InvalidInput("tenant_id names no tenant of yours", field="tenant_id")
            if tenant["kind"] == "department":
                raise InvalidInput("the department's own tenant is never invoiced", field="tenant_id")
            await self._catalogue.lock_tenant(conn, data.tenant_id)
            try:
                contract = await self._catalogue.insert_contract(conn, values)
            except asyncpg.ExclusionViolationError as exc:
                raise OverlappingContract() from exc
            except asyncpg.UniqueViolationError as exc:
                raise Conflict(f"a contract referenced {data.reference} already exists") from exc
            await self._journal.note(conn, principal, "billing.contract.create", ("billing_contract", contract.id),
                                     tenant_id=principal.home_tenant_id, billed_tenant=data.tenant_id,
                                     reference=data.reference, start_date=data.start_date, end_date=data.end_date)
        return contract

    async def update_contract(self, principal: Principal, contract_id: uuid.UUID, data: ContractUpdate) -> Contract:
        self._require(principal, CATALOGUE_ADMINS, "change contracts")
        values: dict[str, Any] = {
            k: Decimal(v) if k in _DECIMAL_FIELDS and isinstance(v, str) else v
            for k in data.__struct_fields__
            if (v := getattr(data, k)) is not msgspec.UNSET
        }
        if isinstance(data.buyer_siret, str):
            check_siret(data.buyer_siret, "buyer_siret")
        async with self._db.transaction(principal) as conn:
            current = await self._catalogue.contract(conn, contract_id)
            if current is None:
                raise NotFound("no such contract")
            if not values:
                return current
            await self._catalogue.lock_tenant(conn, current.tenant_id)
            if "end_date" in values:
                end: date | None = values["end_date"]
                if end is not None and end < current.start_date:
                    raise InvalidInput("a contract ends on or after its start", field="end_date")
                since = end + timedelta(days=1) if end is not None else None
                number = None if since is None else await self._catalogue.tenant_invoiced_through(
                    conn, current.tenant_id, since)
                if number is not None:
                    raise AlreadyInvoiced(f"ending the contract on {end}", number)
            try:
                contract = await self._catalogue.update_contract(conn, contract_id, values)
            except asyncpg.ExclusionViolationError as exc:
                raise OverlappingContract() from exc
            assert contract is not None
            await self._journal.note(conn, principal, "billing.contract.update", ("billing_contract", contract_id),
                                     tenant_id=principal.home_tenant_id, billed_tenant=current.tenant_id,
                                     changed=sorted(values))
        return contract

    async def camera_plans(self, principal: Principal, contract_id: uuid.UUID) -> list[CameraPlan]:
        self._require(principal, BILLING_READERS, "read contracts")
        async with self._db.transaction(principal, readonly=True) as conn:
            if await self._catalogue.contract(conn, contract_id) is None:
                raise NotFound("no such contract")
            return await self._catalogue.camera_plans(conn, contract_id)

    async def change_camera_plan(
        self, principal: Principal, contract_id: uuid.UUID, data: CameraPlanChange
    ) -> list[CameraPlan]:
        """From `from_date` the camera is billed on the new plan (or leaves the contract): the assignment in force
        ends the day before. A date in a month already invoiced is refused (409): a credit note corrects the past."""
        self._require(principal, CATALOGUE_ADMINS, "change the plan of a camera")
        contract = await self.contract(principal, contract_id)
        ends = contract.end_date
        if data.from_date < contract.start_date or (ends is not None and data.from_date > ends):
            raise InvalidInput("from_date falls outside the contract", field="from_date")
        async with self._for_billed_tenant(principal, contract.tenant_id) as conn:
            await self._catalogue.lock_tenant(conn, contract.tenant_id)
            if not await self._catalogue.camera_known(conn, contract.tenant_id, data.camera_id):
                raise InvalidInput("camera_id names no camera of this tenant", field="camera_id")
            if data.plan_id is not None and not await self._catalogue.plans(conn, data.plan_id):
                raise InvalidInput("plan_id names no plan of yours", field="plan_id")
            number = await self._catalogue.tenant_invoiced_through(conn, contract.tenant_id, data.from_date)
            if number is not None:
                raise AlreadyInvoiced(f"a plan change from {data.from_date}", number)
            current = await self._catalogue.camera_plan_at_or_after(conn, contract_id, data.camera_id, data.from_date)
            if current is not None and current["start_date"] >= data.from_date:
                raise Conflict(f"this camera has a plan from {current['start_date']}: change it from a later date")
            if current is not None:
                await self._catalogue.end_camera_plan(conn, current["id"], data.from_date - timedelta(days=1))
            elif data.plan_id is None:
                raise InvalidInput("this camera has no plan on that date", field="plan_id")
            if data.plan_id is not None:
                try:
                    await self._catalogue.insert_camera_plan(conn, {
                        "id": new_id(), "tenant_id": contract.tenant_id, "department_id": principal.department_id,
                        "contract_id": contract_id, "camera_id": data.camera_id, "plan_id": data.plan_id,
                        "start_date": data.from_date, "end_date": contract.end_date, "created_by": principal.user_id,
                    })
                except asyncpg.ExclusionViolationError as exc:
                    raise OverlappingCameraPlan() from exc
            await self._journal.note(conn, principal, "billing.camera_plan.change", ("billing_contract", contract_id),
                                     tenant_id=principal.home_tenant_id, camera_id=data.camera_id,
                                     billed_tenant=contract.tenant_id, plan_id=data.plan_id, from_date=data.from_date)
            return await self._catalogue.camera_plans(conn, contract_id)
