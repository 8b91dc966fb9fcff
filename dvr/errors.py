"""DVR errors, each a subclass of the platform tree so the API maps them without knowing dvr."""

from __future__ import annotations

from core.errors import Conflict, InvalidInput, LegalRuleViolation, NotFound, Unavailable
from core.law import RETENTION_REFERENCE


class RetentionAboveCap(LegalRuleViolation):
    """A retention longer than the authorisation, the tenant setting or one month."""

    def __init__(self, detail: str, *, field: str = "days") -> None:
        super().__init__(detail, field=field, reference=RETENTION_REFERENCE)


class NotRecorded(NotFound):
    """Nothing was recorded for the camera over the requested interval."""


class InvalidInterval(InvalidInput):
    """The interval is empty, reversed, too long or in the future."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail, field="interval")


class InvalidCameraUrl(InvalidInput):
    """Only RTSP(S) stream URLs are recorded."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail, field="main_stream_url")


class RequisitionReleased(Conflict):
    """The requisition's holds were already released."""


class ClipNotReady(Unavailable):
    """The segments that cover the clip's post-event buffer are not indexed yet; retry shortly."""


class ExportTampered(ValueError):
    """An export package fails verification; the message says what differs."""
