"""Free local ports for services a process starts itself (embedded demo services, simulated cameras, test servers)."""

from __future__ import annotations

import random
import socket

# Below Linux's ephemeral range (32768 and up, where the kernel picks the local port of every outgoing connection):
# a port probed free there can be taken by a connection to Postgres, NATS or the object store before the service
# meant for it binds it (the likely reason a console test run once lost all its simulated cameras: connection
# refused).
QUIET_PORTS = (10000, 32000)  # [first, last + 1)


def free_port_range(count: int, host: str = "127.0.0.1") -> int:
    """The first of `count` consecutive ports free on `host`, below the ephemeral range."""
    for _ in range(200):
        base = random.randrange(QUIET_PORTS[0], QUIET_PORTS[1] - count + 1)  # noqa: S311 - not a secret
        try:
            for port in range(base, base + count):
                with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                    probe.bind((host, port))
        except OSError:
            continue
        return base
    raise RuntimeError(f"no {count} consecutive free ports on {host} between {QUIET_PORTS[0]} and {QUIET_PORTS[1]}")


def free_port(host: str = "127.0.0.1") -> int:
    """A port free on `host`, below the ephemeral range."""
    return free_port_range(1, host)
