"""Billing entities and commands (frozen msgspec structs): catalogue, contracts, runs, invoices, the report."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal, NewType

import msgspec

from billing.metering import MONTH_PATTERN

PlanId = NewType("PlanId", uuid.UUID)
ContractId = NewType("ContractId", uuid.UUID)
InvoiceId = NewType("InvoiceId", uuid.UUID)
RunId = NewType("RunId", uuid.UUID)

# Amounts travel as decimal strings (never floats); the limits of every command equal the database's CHECKs, so a
# value the schema accepts is one the database accepts.

# --- command field types (the database CHECKs of migration 0070, as patterns)
Text50 = Annotated[str, msgspec.Meta(min_length=1, max_length=50)]
Text100 = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
Text200 = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Text500 = Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
Text1000 = Annotated[str, msgspec.Meta(min_length=1, max_length=1000)]
# Format only; the check digit (Luhn) is the service's: a bad one is a 422 naming the field.
Siret = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{14}$")]
VatNumber = Annotated[str, msgspec.Meta(pattern=r"^FR[0-9A-Z]{2}[0-9]{9}$")]
Iban = Annotated[str, msgspec.Meta(pattern=r"^FR[0-9]{2}[0-9A-Z]{23}$")]
Postcode = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{5}$")]
Email = Annotated[str, msgspec.Meta(pattern=r"^[^@\s]+@[^@\s]+$", max_length=254)]
PlanCode = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9_]{2,40}$")]
MonthlyPrice = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{1,5}(\.[0-9]{1,2})?$")]
UsagePrice = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{1,4}(\.[0-9]{1,4})?$")]
Percent = Annotated[str, msgspec.Meta(pattern=r"^(100(\.0{1,2})?|[0-9]{1,2}(\.[0-9]{1,2})?)$")]
AvailabilityTarget = Annotated[str, msgspec.Meta(pattern=r"^(100(\.0{1,2})?|[5-9][0-9](\.[0-9]{1,2})?)$")]
PaymentAmount = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{1,10}(\.[0-9]{1,2})?$")]
PaymentDays = Annotated[int, msgspec.Meta(ge=0, le=60)]
MonthText = Annotated[str, msgspec.Meta(pattern=MONTH_PATTERN, description="a calendar month, YYYY-MM")]
PaymentMethod = Literal["transfer", "public_treasury", "direct_debit", "cheque", "other"]
InvoiceKind = Literal["invoice", "credit_note"]
InvoiceStatus = Literal["issued", "sent", "paid", "cancelled"]


# --- catalogue
class IssuerInput(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The body that issues the invoices: the department or its syndicat mixte."""

    legal_name: Text200
    siret: Siret
    vat_number: VatNumber
    address_line: Text200
    postcode: Postcode
    city: Text100
    iban: Iban | None = None
    payment_days: PaymentDays = 30


class Issuer(msgspec.Struct, frozen=True, kw_only=True):
    department_id: uuid.UUID
    legal_name: str
    siret: str
    vat_number: str
    address_line: str
    postcode: str
    city: str
    iban: str | None
    payment_days: int
    updated_at: datetime


class PriceInput(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    effective_from: date
    monthly_price_ht: MonthlyPrice
    detector_hour_price: UsagePrice | None = None
    storage_gb_day_price: UsagePrice | None = None


class PlanCreate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    code: PlanCode
    name: Text200
    description: Text1000 | None = None
    price: PriceInput


class Price(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    plan_id: uuid.UUID
    effective_from: date
    monthly_price_ht: Decimal
    detector_hour_price: Decimal | None
    storage_gb_day_price: Decimal | None
    created_at: datetime


class Plan(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    code: str
    name: str
    description: str | None
    prices: list[Price]
    created_at: datetime


# --- contracts
class ContractCreate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    tenant_id: uuid.UUID
    reference: Text50
    start_date: date
    end_date: date | None = None
    buyer_name: Text200
    buyer_siret: Siret
    buyer_address_line: Text200
    buyer_postcode: Postcode
    buyer_city: Text100
    chorus_service_code: Text100 | None = None
    engagement_number: Text50 | None = None
    billing_contact_name: Text200
    billing_contact_email: Email
    availability_target: AvailabilityTarget = "99.50"
    sla_credit_percent_per_point: Percent = "10"
    sla_credit_cap_percent: Percent = "50"


class ContractUpdate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    end_date: date | msgspec.UnsetType | None = msgspec.UNSET
    buyer_name: Text200 | msgspec.UnsetType = msgspec.UNSET
    buyer_siret: Siret | msgspec.UnsetType = msgspec.UNSET
    buyer_address_line: Text200 | msgspec.UnsetType = msgspec.UNSET
    buyer_postcode: Postcode | msgspec.UnsetType = msgspec.UNSET
    buyer_city: Text100 | msgspec.UnsetType = msgspec.UNSET
    chorus_service_code: Text100 | msgspec.UnsetType | None = msgspec.UNSET
    engagement_number: Text50 | msgspec.UnsetType | None = msgspec.UNSET
    billing_contact_name: Text200 | msgspec.UnsetType = msgspec.UNSET
    billing_contact_email: Email | msgspec.UnsetType = msgspec.UNSET
    availability_target: AvailabilityTarget | msgspec.UnsetType = msgspec.UNSET
    sla_credit_percent_per_point: Percent | msgspec.UnsetType = msgspec.UNSET
    sla_credit_cap_percent: Percent | msgspec.UnsetType = msgspec.UNSET


class Contract(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    tenant_id: uuid.UUID
    reference: str
    start_date: date
    end_date: date | None
    buyer_name: str
    buyer_siret: str
    buyer_address_line: str
    buyer_postcode: str
    buyer_city: str
    chorus_service_code: str | None
    engagement_number: str | None
    billing_contact_name: str
    billing_contact_email: str
    availability_target: Decimal
    sla_credit_percent_per_point: Decimal
    sla_credit_cap_percent: Decimal
    created_at: datetime
    updated_at: datetime


class CameraPlanChange(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """From `from_date`, the camera is billed on `plan_id` (none: it leaves the contract)."""

    camera_id: uuid.UUID
    plan_id: uuid.UUID | None
    from_date: date


class CameraPlan(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    contract_id: uuid.UUID
    camera_id: uuid.UUID
    plan_id: uuid.UUID
    plan_code: str
    start_date: date
    end_date: date | None


# --- runs
class RunRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    month: MonthText


class IssuedRef(msgspec.Struct, frozen=True, kw_only=True):
    invoice_id: uuid.UUID
    tenant_id: uuid.UUID
    number: str
    total_ttc: Decimal


class UnplannedCamera(msgspec.Struct, frozen=True, kw_only=True):
    tenant_id: uuid.UUID
    camera_id: uuid.UUID
    name: str
    days: int


class TenantProblem(msgspec.Struct, frozen=True, kw_only=True):
    tenant_id: uuid.UUID
    tenant_name: str
    problem: str


class RunOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """What a run did: issued now, issued before (a rerun issues nothing new), and what it could not bill."""

    issued: list[IssuedRef] = msgspec.field(default_factory=list)
    already_issued: list[IssuedRef] = msgspec.field(default_factory=list)
    unplanned_cameras: list[UnplannedCamera] = msgspec.field(default_factory=list)
    problems: list[TenantProblem] = msgspec.field(default_factory=list)
    nothing_to_bill: int = 0


class Run(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    month: str
    started_by: uuid.UUID | None
    started_at: datetime
    finished_at: datetime | None
    outcome: RunOutcome


# --- invoices
class Party(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Buyer or seller as copied onto a document at issue."""

    name: str
    siret: str
    address_line: str
    postcode: str
    city: str
    country: str = "FR"
    vat_number: str | None = None
    iban: str | None = None
    chorus_service_code: str | None = None
    engagement_number: str | None = None
    contract_reference: str | None = None
    contact_name: str | None = None
    contact_email: str | None = None


class InvoiceLine(msgspec.Struct, frozen=True, kw_only=True):
    position: int
    kind: str
    description: str
    quantity: Decimal
    unit_code: str
    unit_price: Decimal
    base_quantity: Decimal
    net_amount: Decimal
    vat_rate: Decimal
    plan_id: uuid.UUID | None = None
    camera_id: uuid.UUID | None = None


class AnnexCamera(msgspec.Struct, frozen=True, kw_only=True):
    camera_id: uuid.UUID
    name: str
    insee_code: str
    days_by_plan: dict[str, int]
    unplanned_days: int
    availability: Decimal | None
    credit: Decimal


class Annex(msgspec.Struct, frozen=True, kw_only=True):
    """The metering behind the lines: informative where a usage is not priced."""

    days_in_month: int = 0
    cameras: list[AnnexCamera] = msgspec.field(default_factory=list)
    detector_hours: Decimal = Decimal(0)
    storage_gb_days: Decimal = Decimal(0)


class Payment(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    invoice_id: uuid.UUID
    amount: Decimal
    paid_on: date
    method: str
    reference: str | None
    recorded_at: datetime


class InvoiceSummary(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    tenant_id: uuid.UUID
    kind: str
    status: str
    number: str
    period_start: date
    period_end: date
    issue_date: date
    due_date: date | None
    credit_of: uuid.UUID | None
    total_ht: Decimal
    total_vat: Decimal
    total_ttc: Decimal
    document_sha256: str | None


class Invoice(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    tenant_id: uuid.UUID
    department_id: uuid.UUID
    kind: str
    status: str
    number: str
    period_start: date
    period_end: date
    issue_date: date
    due_date: date | None
    credit_of: uuid.UUID | None
    credit_of_number: str | None
    credit_of_issue_date: date | None
    credit_reason: str | None
    contract_id: uuid.UUID
    buyer: Party
    seller: Party
    currency: str
    vat_rate: Decimal
    total_ht: Decimal
    total_vat: Decimal
    total_ttc: Decimal
    paid_amount: Decimal
    issued_at: datetime
    sent_at: datetime | None
    paid_at: datetime | None
    cancelled_at: datetime | None
    document_sha256: str | None
    lines: list[InvoiceLine]
    payments: list[Payment]
    annex: Annex


class PaymentInput(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    amount: PaymentAmount
    paid_on: date
    method: PaymentMethod
    reference: Text100 | None = None


class CreditNoteRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    reason: Text500


# --- the mayor's monthly report
class Figures(msgspec.Struct, frozen=True, kw_only=True):
    """What the service did for a camera, a commune or the whole tenant over the month (durations in seconds)."""

    availability: Decimal | None
    recorded_hours: Decimal
    alerts_raised: int
    alerts_verified: int
    alerts_dismissed: int
    alerts_dispatched: int
    verification_median_s: float | None
    verification_p90_s: float | None
    dispatch_median_s: float | None
    dispatch_p90_s: float | None
    arrivals: int
    arrival_median_s: float | None
    arrival_p90_s: float | None
    outcomes: dict[str, int]
    requisitions_received: int
    requisitions_served: int


class CameraReport(msgspec.Struct, frozen=True, kw_only=True):
    camera_id: uuid.UUID
    name: str
    figures: Figures


class CommuneReport(msgspec.Struct, frozen=True, kw_only=True):
    insee_code: str
    name: str
    figures: Figures
    cameras: list[CameraReport]


class DayCount(msgspec.Struct, frozen=True, kw_only=True):
    day: date
    raised: int
    verified: int
    dispatched: int


class PaidRef(msgspec.Struct, frozen=True, kw_only=True):
    number: str
    total_ht: Decimal
    total_ttc: Decimal
    status: str


class MonthlyReport(msgspec.Struct, frozen=True, kw_only=True):
    """The mayor's monthly report: the same data as its PDF."""

    tenant_id: uuid.UUID
    tenant_name: str
    month: str
    generated_at: datetime
    invoice: PaidRef | None
    totals: Figures
    communes: list[CommuneReport]
    daily: list[DayCount]
