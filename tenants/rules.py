"""Pure rules of the tenancy domain: camera URLs and networks, INSEE codes, the legal retention cap, authorisations."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from datetime import date, timedelta
from urllib.parse import urlsplit

from core.errors import InvalidInput, LegalRuleViolation
from core.law import LEGAL_MAX_RETENTION_DAYS

AUTHORISATION_MAX_YEARS = 5

# CSI L251-2: the purposes for which public authorities may film the public way.
PURPOSES: dict[str, str] = {
    "public_buildings": "1° protection des bâtiments et installations publics et de leurs abords",
    "national_defence": "2° sauvegarde des installations utiles à la défense nationale",
    "traffic_regulation": "3° régulation des flux de transport",
    "traffic_offences": "4° constatation des infractions aux règles de la circulation",
    "crime_prevention": "5° prévention des atteintes à la sécurité des personnes et des biens",
    "terrorism_prevention": "6° prévention d'actes de terrorisme",
    "natural_technological_risks": "7° prévention des risques naturels ou technologiques",
    "rescue_fire": "8° secours aux personnes et défense contre l'incendie",
    "amusement_parks": "9° sécurité des installations accueillant du public dans les parcs d'attraction",
    "vehicle_insurance": "10° respect de l'obligation d'assurance des véhicules terrestres à moteur",
    "illegal_dumping": "11° prévention et constatation des infractions relatives à l'abandon d'ordures",
}

# Décret 2023-828 art. 3: the eight predetermined events an algorithm may signal.
EVENT_TYPES = (
    "abandoned_object",
    "weapon",
    "wrong_way",
    "forbidden_zone",
    "person_on_ground",
    "crowd_movement",
    "excessive_density",
    "fire_start",
)
# EU AI Act art. 5(1)(h) and loi 2023-380 art. 10: biometric identification can never be enabled.
PROHIBITED_ANALYTICS = frozenset(
    {
        "face_recognition",
        "facial_recognition",
        "licence_plate_reading",
        "license_plate_recognition",
        "biometric_identification",
    }
)

_INSEE = re.compile(r"^(\d{2}|2A|2B)\d{3}$")
_HOST = re.compile(r"^[A-Za-z0-9.-]{1,253}$|^\[[0-9A-Fa-f:.]+\]$")


def check_rtsp_url(url: str, *, field: str) -> str:
    """An RTSP(S) URL with a host and no embedded credentials (those are sent apart and sealed)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidInput(f"{field} is not a valid URL: {exc}", field=field) from exc
    if parts.scheme not in ("rtsp", "rtsps"):
        raise InvalidInput(f"{field} must be an rtsp:// or rtsps:// URL", field=field)
    if not parts.hostname or not _HOST.match(parts.netloc.rsplit("@", 1)[-1].rsplit(":", 1)[0] or "-"):
        raise InvalidInput(f"{field} has no valid host", field=field)
    if parts.username is not None or parts.password is not None:
        raise InvalidInput(f"{field} must not embed credentials; send them in `credentials`", field=field)
    if port is not None and not 0 < port < 65536:
        raise InvalidInput(f"{field} has an invalid port", field=field)
    if any(c.isspace() for c in url):
        raise InvalidInput(f"{field} contains whitespace", field=field)
    return url


Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# Never a camera, whatever a department declares: "this network", link-local (the cloud metadata services answer on
# 169.254.169.254 and fd00:ec2::254), multicast, reserved, broadcast.
FORBIDDEN_NETWORKS: tuple[Network, ...] = tuple(ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "169.254.0.0/16", "224.0.0.0/4", "240.0.0.0/4", "::/128", "fe80::/10", "ff00::/8",
    "fd00:ec2::254/128"))
# A camera network is a network, not the Internet: no wider than this.
MIN_PREFIX = {4: 8, 6: 32}


def _forbidden(address: Address) -> bool:
    return any(address in network for network in FORBIDDEN_NETWORKS)


def check_camera_network(value: str, *, field: str = "network") -> Network:
    """A network a department's cameras live in (CIDR): exact (no host bits), no wider than /8 (IPv4) or /32 (IPv6),
    overlapping no address that is never a camera."""
    try:
        network = ipaddress.ip_network(value.strip(), strict=True)
    except ValueError as exc:
        raise InvalidInput(f"{field} {value!r} is not a network in CIDR notation (e.g. 10.20.0.0/16): {exc}",
                           field=field) from exc
    if network.prefixlen < MIN_PREFIX[network.version]:
        raise InvalidInput(f"{field} {network} is wider than /{MIN_PREFIX[network.version]}: declare the networks the "
                           "cameras are on, not the Internet", field=field)
    for forbidden in FORBIDDEN_NETWORKS:
        if network.version == forbidden.version and network.overlaps(forbidden):
            raise InvalidInput(f"{field} {network} overlaps {forbidden} (link-local, multicast or reserved: never a "
                               "camera)", field=field)
    return network


def stream_host(url: str) -> str:
    """The host of a stream URL as the recorder and the detector will connect to it (lower case, no brackets)."""
    return (urlsplit(url).hostname or "").lower()


def check_camera_host(url: str, networks: Iterable[Network], *, field: str) -> Address:
    """The stream's host is an IP address inside one of the department's camera networks.

    Host names are refused rather than resolved: a name resolved now (here, by this resolver) says nothing of where
    the recorder's or the detector's connection goes later (another resolver, another answer: DNS rebinding), and
    forms such as `2130706433` or `127.1` are names to Python but addresses to ffmpeg's resolver. Cameras on a
    video-protection network have fixed addresses."""
    host = stream_host(url)
    try:
        address: Address = ipaddress.ip_address(host)
    except ValueError as exc:
        raise InvalidInput(f"{field} names the host {host!r}: give the camera's IP address (host names are refused, "
                           "since a name may resolve elsewhere when the recorder connects)", field=field) from exc
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if _forbidden(address):
        raise InvalidInput(f"{field}: {address} is a link-local, multicast or reserved address, never a camera",
                           field=field)
    if not any(address in network for network in networks):
        raise InvalidInput(f"{field}: {address} is in none of the department's camera networks (GET /camera-networks; "
                           "a department admin declares them)", field=field)
    return address


def credentials_follow(old_urls: Iterable[str | None], new_urls: Iterable[str | None]) -> bool:
    """Whether a camera's stored credentials may stay after its URLs change: only while every host they will be sent
    to was already one of the camera's (otherwise pointing the camera elsewhere would hand its password over)."""
    old = {stream_host(u) for u in old_urls if u}
    return {stream_host(u) for u in new_urls if u} <= old


def check_insee_format(code: str, *, field: str = "insee_code") -> str:
    if not _INSEE.match(code):
        raise InvalidInput(f"{field} {code!r} is not an INSEE commune code (5 characters, e.g. 95127)", field=field)
    return code


def check_retention_days(days: int, *, field: str) -> int:
    if days > LEGAL_MAX_RETENTION_DAYS:
        raise LegalRuleViolation(
            f"{field} is {days} days; recordings must be destroyed within {LEGAL_MAX_RETENTION_DAYS} days "
            "at most (Code de la sécurité intérieure, art. L252-5)",
            field=field,
            reference="CSI L252-5",
        )
    if days < 1:
        raise InvalidInput(f"{field} must be at least 1 day", field=field)
    return days


def check_purposes(purposes: list[str]) -> list[str]:
    if not purposes:
        raise LegalRuleViolation(
            "an authorisation states at least one purpose of CSI art. L251-2", field="purposes", reference="CSI L251-2"
        )
    unknown = sorted(set(purposes) - PURPOSES.keys())
    if unknown:
        raise LegalRuleViolation(
            f"purposes {unknown} are not purposes of CSI art. L251-2 (allowed: {sorted(PURPOSES)})",
            field="purposes",
            reference="CSI L251-2",
        )
    return sorted(set(purposes))


def check_authorisation_window(valid_from: date, valid_until: date, *, today: date) -> None:
    if valid_until <= valid_from:
        raise InvalidInput("valid_until must be after valid_from", field="valid_until")
    try:
        limit = valid_from.replace(year=valid_from.year + AUTHORISATION_MAX_YEARS)
    except ValueError:  # 29 February
        limit = valid_from.replace(year=valid_from.year + AUTHORISATION_MAX_YEARS, day=28)
    if valid_until > limit:
        raise LegalRuleViolation(
            "a prefectoral authorisation is valid 5 years at most, then renewed",
            field="valid_until",
            reference="CSI L252-4",
        )
    if valid_until < today:
        raise LegalRuleViolation(
            f"this authorisation expired on {valid_until.isoformat()}", field="valid_until", reference="CSI L252-1"
        )


def check_retention_bounds(max_days: int, min_days: int | None) -> None:
    check_retention_days(max_days, field="max_retention_days")
    if min_days is not None and not 1 <= min_days <= max_days:
        raise InvalidInput("min_retention_days must be between 1 and max_retention_days", field="min_retention_days")


def check_event_type(event_type: str, *, field: str = "event_type") -> str:
    if event_type.lower() in PROHIBITED_ANALYTICS:
        raise LegalRuleViolation(
            f"{event_type} is prohibited: biometric identification cannot be enabled "
            "(EU AI Act art. 5(1)(h); loi 2023-380 art. 10)",
            field=field,
            reference="EU AI Act art. 5",
        )
    if event_type not in EVENT_TYPES:
        raise InvalidInput(
            f"{event_type!r} is not one of the events of décret 2023-828 art. 3 ({', '.join(EVENT_TYPES)})", field=field
        )
    return event_type


def check_event_window(valid_from: date, valid_until: date, auth_from: date, auth_until: date, *, field: str) -> None:
    if valid_until <= valid_from:
        raise InvalidInput(f"{field}: valid_until must be after valid_from", field=field)
    if valid_from < auth_from or valid_until > auth_until:
        raise InvalidInput(
            f"{field}: the window must lie within the authorisation's validity "
            f"({auth_from.isoformat()} to {auth_until.isoformat()})",
            field=field,
        )


def effective_retention_days(tenant_days: int, authorisation_max: int | None) -> int:
    """min(authorisation, tenant setting, 30 days)."""
    candidates = [tenant_days, LEGAL_MAX_RETENTION_DAYS]
    if authorisation_max is not None:
        candidates.append(authorisation_max)
    return min(candidates)


# The scan of a prefectoral order: a PDF of a few pages. Equal to the CHECK on camera_authorisations.order_scan_size
# (migration 0090); the upload route refuses a larger body before reading it.
ORDER_SCAN_MAX_BYTES = 10 * 1024 * 1024
ORDER_SCAN_MEDIA_TYPE = "application/pdf"
_PDF_MAGIC = b"%PDF-"


def check_order_scan(first_bytes: bytes, size: int) -> None:
    """A PDF (its magic bytes, whatever the declared type says), not empty, within the cap."""
    if size > ORDER_SCAN_MAX_BYTES:
        raise InvalidInput(
            f"the scan is {size} bytes; a prefectoral order's scan is at most {ORDER_SCAN_MAX_BYTES} bytes",
            field="body",
        )
    if not first_bytes.startswith(_PDF_MAGIC):
        raise InvalidInput("the scan is not a PDF document (it does not start with %PDF-)", field="body")


# Renewal warnings (issue 15): the department and the tenant see a camera's authorisation coming to its end this
# many days ahead, so the renewal file reaches the prefecture before recording has to stop.
EXPIRY_WARNING_DAYS = (60, 30, 7)


def authorised_until(windows: Sequence[tuple[date, date]], today: date) -> date | None:
    """The last day of uninterrupted authorisation from `today` (windows inclusive at both ends, a renewal taking
    over the day after or earlier continues the cover), or None when no window covers `today`."""
    end: date | None = None
    for valid_from, valid_until in sorted(windows):
        if end is None:
            if valid_from <= today <= valid_until:
                end = valid_until
        elif valid_from <= end + timedelta(days=1):
            end = max(end, valid_until)
    return end


def expiry_warning(days_left: int) -> int | None:
    """The tightest warning threshold (60, 30 or 7 days) `days_left` falls under, or None beyond all of them."""
    under = [threshold for threshold in EXPIRY_WARNING_DAYS if days_left <= threshold]
    return min(under) if under else None
