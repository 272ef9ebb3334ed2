"""Which hosts webhooks may be sent to: only public Internet addresses.

An endpoint URL is chosen by an administrator, but the request leaves from our servers, so a URL
such as ``https://169.254.169.254/`` or ``https://10.0.0.5/`` would let whoever controls it make
Audience Relay talk to the cloud metadata service or to machines inside its own network
(server-side request forgery). A host is refused when it does not resolve or when *any* of its
addresses is not globally routable, because the connection may go to any of them.

The check runs when an endpoint is saved (``webhooks.forms``) and again before every delivery
(``webhooks.http.post``), which then connects only to the addresses it checked.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings

from config.translation import LaterText
from config.translation import gettext_later as _

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: Networks an organisation uses for its own machines: answered as "inside your own network".
OWN_NETWORKS = tuple(
    ipaddress.ip_network(network)
    for network in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",  # carrier-grade NAT, also used inside clouds
        "169.254.0.0/16",  # link-local, with the cloud metadata service at 169.254.169.254
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local (deprecated, still routed by some networks)
    )
)
#: IPv6 addresses whose packets end up at the IPv4 address written in their last 32 bits.
NAT64 = ipaddress.ip_network("64:ff9b::/96")


class AddressRefused(Exception):
    """The host is not one webhooks are sent to; ``message`` says why, to an administrator."""

    def __init__(self, message: LaterText):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return str(self.message)


def private_addresses_allowed() -> bool:
    """Development (``DEBUG``, as in ``make demo``) and tests with a local receiver send to
    addresses inside the network; production and test settings set ``DEBUG = False``."""
    return settings.DEBUG or settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES


def deliverable_addresses(url: str) -> list[IPAddress]:
    """The addresses of the URL's host, when webhooks may be sent to every one of them.

    Raises ``AddressRefused`` when the host cannot be found, or when an address is not public
    and ``private_addresses_allowed()`` is false."""
    host = urlsplit(url).hostname or ""
    found = resolve(host)
    if not private_addresses_allowed():
        for address in found:
            refusal = refusal_for(address)
            if refusal is not None:
                raise AddressRefused(refusal)
    return found


def resolve(host: str) -> list[IPAddress]:
    """Every address the host resolves to (a literal address resolves to itself), in the
    resolver's order, without repeats."""
    if not host:
        raise _not_found(host)
    try:
        results = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as failure:
        raise _not_found(host) from failure
    found: list[IPAddress] = []
    for _family, _type, _proto, _canonname, sockaddr in results:
        address = ipaddress.ip_address(sockaddr[0])
        if address not in found:
            found.append(address)
    if not found:
        raise _not_found(host)
    return found


def _not_found(host: str) -> AddressRefused:
    return AddressRefused(_("The host %(host)s could not be found.") % {"host": host})


def refusal_for(address: IPAddress) -> LaterText | None:
    """Why webhooks are not sent to this address, or None when it is a public one."""
    # An IPv6 address that stands for an IPv4 one is judged, and named, by where it leads.
    for candidate in (_embedded_ipv4(address), address):
        if candidate is None or _is_public(candidate):
            continue
        shown = {"address": str(candidate)}
        if candidate.is_loopback or candidate.is_unspecified:
            return (
                _(
                    "This address points to the Audience Relay server itself (%(address)s). "
                    "Webhooks are only sent to public addresses."
                )
                % shown
            )
        if any(candidate in network for network in OWN_NETWORKS):
            return (
                _(
                    "This address points inside your own network (%(address)s). Webhooks are "
                    "only sent to public addresses."
                )
                % shown
            )
        return (
            _(
                "This address is not a public Internet address (%(address)s). Webhooks are only "
                "sent to public addresses."
            )
            % shown
        )
    return None


def _is_public(address: IPAddress) -> bool:
    # ``is_global`` leaves out loopback, private, link-local, reserved, documentation and
    # carrier-grade NAT ranges, but on Python 3.11 it counts multicast and IPv6 site-local
    # addresses as global.
    if address.is_multicast:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.is_site_local:
        return False
    return address.is_global


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address that an IPv6 address stands for (IPv4-mapped, 6to4, NAT64), if any:
    ``::ffff:10.0.0.5`` reaches 10.0.0.5."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF)
    return None
