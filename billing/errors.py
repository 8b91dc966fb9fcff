"""Billing errors, each a kind of the platform's error tree so the API maps it to its problem+json status."""

from __future__ import annotations

from core.errors import Conflict, InvalidInput


class BadSiret(InvalidInput):
    def __init__(self, field: str) -> None:
        super().__init__(f"{field} is not a valid SIRET (its check digit is wrong)", field=field)


class OverlappingContract(Conflict):
    def __init__(self) -> None:
        super().__init__("this tenant already has a contract on some of these days")


class OverlappingCameraPlan(Conflict):
    def __init__(self) -> None:
        super().__init__("this camera already has a plan on some of these days")


class MonthNotEnded(InvalidInput):
    def __init__(self, month: str) -> None:
        super().__init__(f"{month} has not ended yet (Europe/Paris): it cannot be invoiced", field="month")


class AlreadyInvoiced(Conflict):
    """A change dated on or before a day an issued invoice already billed: a credit note corrects the past."""

    def __init__(self, what: str, number: str) -> None:
        super().__init__(f"{what} would change what invoice {number} billed; cancel it with a credit note first")


class DocumentImmutable(Conflict):
    def __init__(self, detail: str) -> None:
        super().__init__(detail)


class IssuerMissing(Conflict):
    def __init__(self) -> None:
        super().__init__("the department's issuing body is not set yet (PUT /billing/issuer)")
