"""Client address resolution and the edge middlewares' configuration checks."""

from __future__ import annotations

import ipaddress

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from funmagic_gateway.entrypoints.edge import (
    IPNetwork,
    client_ip,
    cors_middleware,
    parse_trusted_proxies,
)

PROXIES = parse_trusted_proxies("10.0.0.0/8, 192.168.1.7, fd00::/8")


def request_from(remote: str | None, *forwarded_for: str) -> web.Request:
    headers = [("X-Forwarded-For", value) for value in forwarded_for]
    request = make_mocked_request("GET", "/api/tools", headers=headers)
    return request.clone(remote=remote) if remote is not None else request


def test_parse_trusted_proxies_reads_ips_and_networks() -> None:
    expected = (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("192.168.1.7/32"),
        ipaddress.ip_network("fd00::/8"),
    )
    assert parse_trusted_proxies("10.0.0.0/8, 192.168.1.7, fd00::/8") == expected


@pytest.mark.parametrize("value", ["", " ", " , ,"])
def test_parse_trusted_proxies_of_nothing_trusts_nobody(value: str) -> None:
    assert parse_trusted_proxies(value) == ()


@pytest.mark.parametrize("bad", ["10.0.0.256", "proxy.internal", "10.0.0.5/24", "10.0.0.0/33", "*"])
def test_parse_trusted_proxies_names_the_bad_entry(bad: str) -> None:
    with pytest.raises(ValueError, match="invalid trusted proxy entry") as raised:
        parse_trusted_proxies(f"10.0.0.0/8, {bad}")
    assert repr(bad) in str(raised.value)


def test_untrusted_peer_is_the_client_and_its_forwarded_for_is_ignored() -> None:
    # A client that writes X-Forwarded-For itself must not choose its own rate-limit bucket.
    assert client_ip(request_from("203.0.113.9", "1.2.3.4"), PROXIES) == "203.0.113.9"


def test_with_no_trusted_proxies_forwarded_for_is_always_ignored() -> None:
    assert client_ip(request_from("10.1.2.3", "1.2.3.4"), ()) == "10.1.2.3"


def test_trusted_peer_without_forwarded_for_is_the_client() -> None:
    assert client_ip(request_from("10.1.2.3"), PROXIES) == "10.1.2.3"


def test_trusted_peer_passes_on_the_address_it_saw() -> None:
    assert client_ip(request_from("10.1.2.3", "198.51.100.20"), PROXIES) == "198.51.100.20"


def test_spoofed_entries_left_of_the_real_client_are_ignored() -> None:
    # The client sent "X-Forwarded-For: 1.1.1.1"; our proxy appended the address it saw.
    request = request_from("10.1.2.3", "1.1.1.1, 198.51.100.20")
    assert client_ip(request, PROXIES) == "198.51.100.20"


def test_a_chain_of_trusted_proxies_is_walked_from_the_right() -> None:
    request = request_from("10.0.0.1", "1.1.1.1, 198.51.100.20, 192.168.1.7, 10.9.9.9")
    assert client_ip(request, PROXIES) == "198.51.100.20"


def test_several_forwarded_for_headers_form_one_list() -> None:
    request = request_from("10.0.0.1", "1.1.1.1, 198.51.100.20", "10.9.9.9")
    assert client_ip(request, PROXIES) == "198.51.100.20"


def test_only_trusted_hops_means_the_leftmost_one_is_the_client() -> None:
    assert client_ip(request_from("10.0.0.1", "10.5.5.5, 10.9.9.9"), PROXIES) == "10.5.5.5"


@pytest.mark.parametrize(
    ("forwarded_for", "expected"),
    [
        ("1.1.1.1, garbage, 10.9.9.9", "10.9.9.9"),
        ("1.1.1.1, 198.51.100.20:443", "10.0.0.1"),
        ("1.1.1.1, ", "10.0.0.1"),
        ("unknown", "10.0.0.1"),
        ("1.1.1.1, 999.1.1.1, 10.9.9.9", "10.9.9.9"),
    ],
)
def test_malformed_entries_stop_the_walk_at_the_last_trusted_hop(forwarded_for: str, expected: str) -> None:
    # What is left of garbage cannot be vouched for by any of our proxies: never believe it.
    assert client_ip(request_from("10.0.0.1", forwarded_for), PROXIES) == expected


def test_ipv6_clients_and_proxies() -> None:
    assert client_ip(request_from("fd00::1", "2001:db8::7"), PROXIES) == "2001:db8::7"
    assert client_ip(request_from("2001:db8::9", "1.2.3.4"), PROXIES) == "2001:db8::9"


def test_ipv4_mapped_addresses_are_the_same_client_as_plain_ipv4() -> None:
    assert client_ip(request_from("::ffff:10.1.2.3", "198.51.100.20"), PROXIES) == "198.51.100.20"
    assert client_ip(request_from("::ffff:203.0.113.9"), PROXIES) == "203.0.113.9"


def test_without_a_peer_address_there_is_nothing_to_trust() -> None:
    # make_mocked_request has no socket peer, like a unix-socket listener.
    assert client_ip(request_from(None, "1.2.3.4"), PROXIES) == "unknown"


def test_trusted_proxies_may_be_any_sequence() -> None:
    networks: list[IPNetwork] = [ipaddress.ip_network("127.0.0.0/8")]
    assert client_ip(request_from("127.0.0.1", "198.51.100.1"), networks) == "198.51.100.1"


@pytest.mark.parametrize(
    "origins",
    [
        ["https://app.example.com", "*"],
        ["https://app.example.com/"],
        ["app.example.com"],
        ["null"],
        ["https://App.example.com"],
        ["ftp://files.example.com"],
        ["https://example.com:notaport"],
    ],
)
def test_cors_refuses_wildcards_and_non_origins(origins: list[str]) -> None:
    with pytest.raises(ValueError, match="CORS origin"):
        cors_middleware(origins)


def test_cors_refuses_a_bare_string() -> None:
    with pytest.raises(TypeError):
        cors_middleware("https://app.example.com")


def test_cors_accepts_exact_origins() -> None:
    assert callable(cors_middleware(["https://app.example.com", "http://localhost:5173"]))
