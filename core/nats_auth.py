"""The platform's NATS users and what each may publish and subscribe to (least privilege), as nats-server
authorization configuration (the embedded server renders it; the deployment ships the same table,
infra/terraform/nats-permissions.json, checked equal by a test), and TLS to the servers."""

from __future__ import annotations

import json
import ssl
import sys
from collections.abc import Mapping
from pathlib import Path

# The streams of the platform (declared by the domains' events modules; a test checks the names match).
DETECTIONS, ALERTS, PUSH, DVR, DEADLETTER = "DETECTIONS", "ALERTS", "PUSH", "DVR", "DEADLETTER"

# Tools with every right: the test harness, benchmarks, an operator's `nats` CLI on a development machine.
ADMIN_USER = "admin"


def inbox_prefix(user: str) -> str:
    """The reply subjects of one user's requests (JetStream API answers, publish acks, pulled messages). Each user
    has its own, so no one can listen to another's replies."""
    return "_INBOX" if user == ADMIN_USER else f"_INBOX_{user}"


def _check_streams(*streams: str) -> list[str]:
    """Check a stream at start (its info only: `vigie bus provision`, as the admin, creates and updates streams, so
    no process can rewrite or downgrade one)."""
    return [f"$JS.API.STREAM.INFO.{s}" for s in streams]


def _consume(*streams: str) -> list[str]:
    """Durable pull consumers of a stream: create or look up the consumer, pull, ack / nak / term."""
    return [subject for s in streams for subject in (
        f"$JS.API.CONSUMER.INFO.{s}.>", f"$JS.API.CONSUMER.CREATE.{s}.>", f"$JS.API.CONSUMER.DURABLE.CREATE.{s}.>",
        f"$JS.API.CONSUMER.MSG.NEXT.{s}.>", f"$JS.ACK.{s}.>")]


def _dead_letters(*streams: str) -> list[str]:
    return [f"deadletter.{s}.>" for s in streams]


# What each process publishes (events, dead letters, JetStream API requests); it subscribes to its inbox only.
PUBLISH: Mapping[str, list[str]] = {
    # The live queue: an ordered, ephemeral view of ALERTS (consumer create / delete, flow-control replies).
    "api": [f"$JS.API.STREAM.INFO.{ALERTS}", f"$JS.API.CONSUMER.CREATE.{ALERTS}", f"$JS.API.CONSUMER.CREATE.{ALERTS}.>",
            f"$JS.API.CONSUMER.INFO.{ALERTS}.>", f"$JS.API.CONSUMER.DELETE.{ALERTS}.>", f"$JS.FC.{ALERTS}.>"],
    # The detector publishes detections and the dead letters of what it could not encode, nothing else.
    "inference": ["detections.>", *_dead_letters(DETECTIONS), *_check_streams(DETECTIONS, DEADLETTER)],
    # The alert engine turns detections, pushes' outcomes and clips into alerts and dispatch orders.
    "alerts": ["alerts.>", *_dead_letters(DETECTIONS, PUSH, DVR),
               *_check_streams(DETECTIONS, ALERTS, PUSH, DVR, DEADLETTER), *_consume(DETECTIONS, PUSH, DVR)],
    # Recorders cut alerts' clips and report recordings.
    "dvr": ["dvr.>", *_dead_letters(ALERTS), *_check_streams(DVR, ALERTS, DEADLETTER), *_consume(ALERTS)],
    # The push dispatcher consumes dispatch orders and reports deliveries; it can publish neither detections nor
    # orders.
    "mobile_push": ["push.>", *_dead_letters(ALERTS), *_check_streams(ALERTS, PUSH, DEADLETTER), *_consume(ALERTS)],
}
PROCESS_USERS = tuple(PUBLISH)


def permissions(user: str) -> dict[str, dict[str, list[str]]]:
    """nats-server `permissions` of a platform user (everything for the admin)."""
    if user == ADMIN_USER:
        return {"publish": {"allow": [">"]}, "subscribe": {"allow": [">"]}}
    return {"publish": {"allow": list(PUBLISH[user])}, "subscribe": {"allow": [f"{inbox_prefix(user)}.>"]}}


def permission_table() -> dict[str, dict[str, dict[str, list[str]]]]:
    """Every process user's permissions, as the deployment ships them."""
    return {user: permissions(user) for user in PROCESS_USERS}


def authorization(passwords: Mapping[str, str]) -> dict[str, object]:
    """The `authorization` block of a nats-server configuration: the given users, their passwords and permissions."""
    return {"users": [{"user": u, "password": p, "permissions": permissions(u)} for u, p in passwords.items()]}


def tls_context(ca_file: Path | None, cert_file: Path | None = None,
                key_file: Path | None = None) -> ssl.SSLContext | None:
    """TLS to the servers when a CA is configured (and this client's certificate when one is); None otherwise."""
    if ca_file is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca_file))
    if cert_file is not None:
        context.load_cert_chain(str(cert_file), None if key_file is None else str(key_file))
    return context


def development_password(user: str) -> str:
    """The password of a NATS user on development and test platforms (public, hence refused in production)."""
    return f"vigie-nats-{user}-dev"


if __name__ == "__main__":
    # `python -m core.nats_auth > infra/terraform/nats-permissions.json`
    sys.stdout.write(json.dumps(permission_table(), indent=2) + "\n")
