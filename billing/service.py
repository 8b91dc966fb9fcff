"""BillingService: the use cases of billing, one module each, built once by the API and the CLI."""

from __future__ import annotations

from billing.catalogue import CatalogueCases
from billing.invoices import InvoiceCases
from billing.report import ReportCases


class BillingService(CatalogueCases, InvoiceCases, ReportCases):
    """Built with a Database, the journal, the object store and BillingSettings (see billing.access.BillingBase).

    * catalogue.py: the issuing body, plans and versioned prices, contracts and the plan of each camera;
    * runs.py: the monthly run and the rendering of documents;
    * invoices.py: documents, status moves, payments, credit notes, the Chorus Pro deposit;
    * report.py: the mayor's monthly report.
    """
