"""Errors of the detection domain; all are VigieErrors so the API maps them in one place.

* VigieError (core.errors)
  + InvalidInput
    - InvalidZone          - a polygon that self-intersects, leaves the frame or has too few points
    - InvalidRule          - a rule's type or parameters are wrong
    - LegalRuleViolation
      . RuleNotAuthorised  - no legal basis (authorised event type with a valid window) for the rule's event type
      . ForbiddenAnalysis  - face recognition / licence-plate reading: never possible (EU AI Act art. 5)
  + ModelAssetError        - the detector model could not be obtained, verified or loaded
  + Unavailable
    - BackendUnavailable   - the configured backend cannot run on this node (DeepStream without pyds)
  + CameraStreamError      - a camera URL is not RTSP, unreachable, or its stream undecodable
"""

from __future__ import annotations

from core.errors import InvalidInput, LegalRuleViolation, Unavailable, VigieError


class InvalidZone(InvalidInput):
    """A zone or line geometry is not usable."""


class InvalidRule(InvalidInput):
    """A rule's type or parameters are not usable."""


class RuleNotAuthorised(LegalRuleViolation):
    """The camera's authorisation records no valid legal basis for the rule's event type today."""


class ForbiddenAnalysis(LegalRuleViolation):
    """An analysis the law forbids outright (biometric identification, licence-plate reading)."""


class ModelAssetError(VigieError):
    """The detector model could not be obtained, verified or loaded."""


class CameraStreamError(VigieError):
    """A camera stream cannot be opened or decoded."""


class BackendUnavailable(Unavailable):
    """The detection backend VIGIE_INFERENCE_BACKEND names cannot run on this node."""
