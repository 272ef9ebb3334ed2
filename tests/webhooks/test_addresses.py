from __future__ import annotations

import ipaddress

import pytest
from django.utils import translation

from tests.fake_dns import PUBLIC_ADDRESS
from webhooks import addresses

SERVER_ITSELF = "points to the Audience Relay server itself"
OWN_NETWORK = "points inside your own network"
NOT_PUBLIC = "is not a public Internet address"


def refusal(url: str) -> str:
    with pytest.raises(addresses.AddressRefused) as refused:
        addresses.deliverable_addresses(url)
    return str(refused.value.message)


@pytest.mark.parametrize(
    ("host", "why"),
    [
        ("127.0.0.1", SERVER_ITSELF),
        ("127.8.9.10", SERVER_ITSELF),
        ("0.0.0.0", SERVER_ITSELF),  # noqa: S104 (an address refused, not bound)
        ("[::1]", SERVER_ITSELF),
        ("[::]", SERVER_ITSELF),
        ("10.0.0.5", OWN_NETWORK),
        ("172.16.0.1", OWN_NETWORK),
        ("192.168.1.1", OWN_NETWORK),
        ("169.254.169.254", OWN_NETWORK),
        ("100.64.0.1", OWN_NETWORK),
        ("[fc00::1]", OWN_NETWORK),
        ("[fd00:ec2::254]", OWN_NETWORK),
        ("[fe80::1]", OWN_NETWORK),
        ("[fec0::1]", OWN_NETWORK),
        ("224.0.0.1", NOT_PUBLIC),
        ("[ff02::1]", NOT_PUBLIC),
        ("240.0.0.1", NOT_PUBLIC),
        ("255.255.255.255", NOT_PUBLIC),
        ("192.0.2.1", NOT_PUBLIC),
        ("[2001:db8::1]", NOT_PUBLIC),
    ],
)
def test_it_refuses_an_address_that_is_not_public(host, why):
    message = refusal(f"https://{host}:8443/in")

    assert why in message
    assert f"({host.strip('[]')})" in message
    assert message.endswith("Webhooks are only sent to public addresses.")


@pytest.mark.parametrize(
    ("host", "why", "leads_to"),
    [
        ("[::ffff:127.0.0.1]", SERVER_ITSELF, "127.0.0.1"),
        ("[::ffff:10.0.0.5]", OWN_NETWORK, "10.0.0.5"),
        ("[2002:a00:5::1]", OWN_NETWORK, "10.0.0.5"),  # 6to4
        ("[64:ff9b::a9fe:a9fe]", OWN_NETWORK, "169.254.169.254"),  # NAT64
    ],
)
def test_it_refuses_an_ipv6_address_that_stands_for_a_private_ipv4_one(host, why, leads_to):
    message = refusal(f"https://{host}/in")

    assert why in message
    assert f"({leads_to})" in message


@pytest.mark.parametrize("host", [PUBLIC_ADDRESS, "[2606:4700::1111]", "[::ffff:8.8.8.8]"])
def test_it_allows_a_public_address(host):
    assert addresses.deliverable_addresses(f"https://{host}/in") == [
        ipaddress.ip_address(host.strip("[]"))
    ]


def test_it_allows_a_name_whose_addresses_are_all_public(dns):
    dns.answers["hooks.example.com"] = [PUBLIC_ADDRESS, "2606:4700::1111"]

    assert addresses.deliverable_addresses("https://hooks.example.com/in") == [
        ipaddress.ip_address(PUBLIC_ADDRESS),
        ipaddress.ip_address("2606:4700::1111"),
    ]


def test_it_refuses_a_name_that_resolves_inside_the_network(dns):
    dns.answers["intranet.example.com"] = ["10.0.0.5"]

    assert refusal("https://intranet.example.com/in") == (
        "This address points inside your own network (10.0.0.5). Webhooks are only sent to "
        "public addresses."
    )


def test_it_refuses_a_name_when_any_of_its_addresses_is_private(dns):
    dns.answers["mixed.example.com"] = [PUBLIC_ADDRESS, "169.254.169.254"]

    assert OWN_NETWORK in refusal("https://mixed.example.com/in")


def test_it_refuses_a_name_that_cannot_be_found():
    assert refusal("https://example.invalid/in") == "The host example.invalid could not be found."


def test_private_addresses_are_allowed_when_the_setting_says_so(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = True

    assert addresses.deliverable_addresses("http://127.0.0.1:9000/in") == [
        ipaddress.ip_address("127.0.0.1")
    ]


def test_private_addresses_are_allowed_in_development(settings):
    settings.DEBUG = True

    assert addresses.private_addresses_allowed()
    assert addresses.deliverable_addresses("http://10.0.0.5/in")


def test_private_addresses_are_refused_by_default(settings):
    assert settings.DEBUG is False
    assert settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES is False
    assert not addresses.private_addresses_allowed()


def test_a_name_that_cannot_be_found_is_refused_even_when_private_addresses_are_allowed(
    settings,
):
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = True

    assert "could not be found" in refusal("https://example.invalid/in")


def test_the_reason_is_translated_when_it_is_read():
    with pytest.raises(addresses.AddressRefused) as refused:
        addresses.deliverable_addresses("https://10.0.0.5/in")

    with translation.override("fr"):
        french = str(refused.value.message)
    assert "10.0.0.5" in french
    assert OWN_NETWORK not in french
