"""Pure rules of the tenancy domain: camera URLs, INSEE codes, the legal retention cap, authorisations."""

from __future__ import annotations

import re
from datetime import date
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
