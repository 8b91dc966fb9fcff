"""Settings of billing, read from VIGIE_BILLING_* environment variables."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.settings import PROJECT_ROOT


class BillingSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VIGIE_BILLING_", extra="ignore")

    # VAT on every line (the standard French rate); invoices copy the rate they were issued with.
    vat_rate: Decimal = Field(default=Decimal("20.00"), gt=0, lt=100)
    # Processes rendering PDFs in a run (weasyprint holds the GIL): one per core. 1 renders in a thread.
    render_workers: int = Field(default=2, ge=1, le=32)
    # The one font family the documents embed, and where its reduced copy is cached (see billing.documents).
    font_source_dir: Path = Path("/usr/share/fonts/truetype/dejavu")
    font_cache_dir: Path = PROJECT_ROOT / "var" / "billing" / "fonts"
    # Chorus Pro takes at most 500 invoices per deposited flow: larger months are split into parts.
    chorus_max_documents: int = Field(default=500, ge=1, le=500)
