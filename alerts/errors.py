"""Alert errors, as subtypes of the platform's tree so the API maps them without knowing alerts."""

from __future__ import annotations

from core.errors import Conflict, InvalidInput, NotFound


class AlertNotFound(NotFound):
    """No such alert in the caller's scope (absent or another tenant's: indistinguishable)."""


class AlertClosed(Conflict):
    """The alert is closed or dismissed: nothing more may be done to it."""


class InvalidTransition(Conflict):
    """The alert's state does not allow the action (double claim, dispatch before verification...)."""


class AlreadyClaimed(Conflict):
    """Another operator holds the alert."""


class UnknownForce(InvalidInput):
    """The force named in a dispatch is not competent for the alert's commune."""


class ClipNotAttached(Conflict):
    """The alert has no clip to open: the recorder is still cutting it, or nothing was recorded over its interval."""


class SnapshotMissing(Conflict):
    """The alert has no picture: the detector could not store one when it fired, or the event carried none."""
