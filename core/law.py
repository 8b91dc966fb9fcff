"""Legal limits that several domains enforce, stated once (the kernel's part of the law; constants only)."""

from __future__ import annotations

# CSI L252-5: "Ce délai ne peut excéder un mois." Thirty days is the platform's reading of one month: a tenant's
# setting, a camera's authorisation and the recorder's retention all stay under it.
LEGAL_MAX_RETENTION_DAYS = 30
RETENTION_REFERENCE = "CSI L252-5"
