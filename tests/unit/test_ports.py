"""Ports picked for self-started services: free, consecutive when asked, and below the kernel's ephemeral range."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from core import ports
from core.ports import QUIET_PORTS, free_port, free_port_range


def ephemeral_range() -> tuple[int, int]:
    low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    return int(low), int(high)


def test_quiet_ports_lie_below_the_ephemeral_range() -> None:
    assert QUIET_PORTS[1] < ephemeral_range()[0]


def test_a_free_range_can_be_bound_port_by_port() -> None:
    base = free_port_range(8)
    assert QUIET_PORTS[0] <= base
    assert base + 8 <= QUIET_PORTS[1]
    held = []
    try:
        for port in range(base, base + 8):
            server = socket.socket()
            server.bind(("127.0.0.1", port))
            held.append(server)
    finally:
        for server in held:
            server.close()


def test_a_single_port_is_free_and_quiet() -> None:
    port = free_port()
    assert QUIET_PORTS[0] <= port < QUIET_PORTS[1]
    with socket.socket() as server:
        server.bind(("127.0.0.1", port))


def test_a_taken_port_is_never_handed_out(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", free_port()))
        port = taken.getsockname()[1]
        # A range of two ports, one of them taken: only the other can come out, and a pair cannot.
        monkeypatch.setattr(ports, "QUIET_PORTS", (port, port + 2))
        assert {free_port() for _ in range(20)} == {port + 1}
        with pytest.raises(RuntimeError, match="no 2 consecutive free ports"):
            free_port_range(2)
