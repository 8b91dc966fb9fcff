"""`vigie bus provision`: declares the platform's JetStream streams and durable consumers (processes only check)."""

from __future__ import annotations

import argparse
import sys

from alerts.clips import clip_consumers
from alerts.events import ALERTS_STREAM
from alerts.settings import AlertsSettings, detections_consumer, escalation_consumer
from core.bus import DEAD_LETTER_SPEC, Bus, ConsumerSpec, StreamSpec
from core.errors import Unavailable
from core.nats_auth import ADMIN_USER
from core.settings import Settings
from dvr.alert_clips import clip_consumer
from dvr.events import DVR_STREAM
from dvr.settings import DvrSettings
from inference.events import DETECTIONS_STREAM
from mobile_push.events import PUSH_STREAM
from mobile_push.settings import orders_consumer

PLATFORM_STREAMS: tuple[StreamSpec, ...] = (DETECTIONS_STREAM, ALERTS_STREAM, PUSH_STREAM, DVR_STREAM, DEAD_LETTER_SPEC)


def platform_consumers() -> list[ConsumerSpec]:
    """Every durable consumer the processes share, as their settings name them."""
    alerts = AlertsSettings()
    return [detections_consumer(alerts), escalation_consumer(alerts), *clip_consumers(alerts),
            clip_consumer(DvrSettings()), orders_consumer()]


async def provision_platform(bus: Bus) -> list[str]:
    """Declare every stream (never lowering its replicas) and every durable consumer; one line per object."""
    done = [await bus.provision_stream(spec) for spec in PLATFORM_STREAMS]
    done += [await bus.provision_consumer(spec) for spec in platform_consumers()]
    return done


async def provision_url(url: str, *, replicas: int = 1) -> list[str]:
    """The embedded, demo and test platforms: provision once at start, as the server's anonymous admin."""
    bus = await Bus.connect(url, name="provision", replicas=replicas)
    try:
        return await provision_platform(bus)
    finally:
        await bus.close()


async def provision_settings(settings: Settings) -> list[str]:
    """Provision the bus the settings name, as its admin user."""
    bus = await Bus.connect_as(settings, ADMIN_USER, name="vigie-bus-provision")
    try:
        return await provision_platform(bus)
    finally:
        await bus.close()


async def cmd_bus_provision(settings: Settings, _: argparse.Namespace) -> int:
    try:
        lines = await provision_settings(settings)
    except Unavailable as exc:
        print(f"bus provision: {exc.detail}", file=sys.stderr)
        return 1
    for line in lines:
        print(line)
    return 0


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`vigie bus provision`, added to the command line's parser."""
    group = commands.add_parser("bus", help="JetStream streams and consumers").add_subparsers(
        dest="bus_command", required=True)
    group.add_parser("provision", help="declare streams (with VIGIE_NATS__STREAM_REPLICAS, never fewer than they "
                     "have) and durable consumers; run as the NATS admin").set_defaults(run=cmd_bus_provision)
