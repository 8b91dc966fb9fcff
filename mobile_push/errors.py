"""Errors of the push domain, each a core error type so the API maps it to the right 4xx."""

from __future__ import annotations

from core.errors import Conflict, InvalidInput, NotFound


class DeviceNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("no such device")


class DuplicateToken(Conflict):
    def __init__(self) -> None:
        super().__init__("this FCM registration token is already registered to a device")


class NotDispatchedToYou(NotFound):
    def __init__(self) -> None:
        super().__init__("no such dispatch for you")


class StatusReplayed(Conflict):
    def __init__(self, status: str) -> None:
        super().__init__(f"status {status!r} was already reported for this dispatch")


class StatusOutOfOrder(Conflict):
    def __init__(self, current: str | None, status: str) -> None:
        super().__init__(f"status {status!r} cannot follow {current or 'nothing'!r}")


class ForeignDevice(InvalidInput):
    def __init__(self) -> None:
        super().__init__("device_id is not one of your registered devices", field="device_id")


class InvalidTokenShape(InvalidInput):
    def __init__(self) -> None:
        super().__init__("fcm_token is not an FCM registration token", field="fcm_token")
