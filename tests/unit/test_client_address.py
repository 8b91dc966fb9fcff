"""The client's address behind trusted proxies: X-Forwarded-For believed only from them, walked right to left."""

from __future__ import annotations

import ipaddress

from api.proxies import client_address

PROXIES = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("2001:db8:ffff::/48")]


def test_an_untrusted_peer_is_the_client_whatever_it_claims() -> None:
    assert client_address("192.0.2.7", ["203.0.113.5"], PROXIES) == "192.0.2.7"
    assert client_address("192.0.2.7", [], []) == "192.0.2.7"
    assert client_address("10.0.0.2", ["203.0.113.5"], []) == "10.0.0.2"  # no trusted proxies configured


def test_the_rightmost_untrusted_address_is_the_client() -> None:
    assert client_address("10.0.0.2", ["203.0.113.5"], PROXIES) == "203.0.113.5"
    # The client may write anything to the left: only what trusted proxies appended counts.
    assert client_address("10.0.0.2", ["198.51.100.1, 203.0.113.5"], PROXIES) == "203.0.113.5"
    # Two trusted hops, and several headers read in order.
    assert client_address("10.0.0.2", ["203.0.113.5, 10.1.1.1"], PROXIES) == "203.0.113.5"
    assert client_address("10.0.0.2", ["198.51.100.1", "203.0.113.5", "10.1.1.1"], PROXIES) == "203.0.113.5"


def test_ports_brackets_and_ipv6_are_understood() -> None:
    assert client_address("10.0.0.2", ["203.0.113.5:51234"], PROXIES) == "203.0.113.5"
    assert client_address("2001:db8:ffff::1", ["[2001:db8:1::5]:443"], PROXIES) == "2001:db8:1::5"
    assert client_address("::ffff:10.0.0.2", ["203.0.113.5"], PROXIES) == "203.0.113.5"


def test_a_malformed_or_empty_chain_stops_at_the_last_trusted_hop() -> None:
    assert client_address("10.0.0.2", ["not-an-ip"], PROXIES) == "10.0.0.2"
    assert client_address("10.0.0.2", ["203.0.113.5, garbage, 10.1.1.1"], PROXIES) == "10.1.1.1"
    assert client_address("10.0.0.2", [""], PROXIES) == "10.0.0.2"
    assert client_address("10.0.0.2", ["10.1.1.1"], PROXIES) == "10.1.1.1"  # only proxies: the farthest one
