"""A stand-in for DNS: webhook addresses are resolved and checked, and no test may reach a
real resolver."""

from __future__ import annotations

import ipaddress
import socket

#: A public address (example.com's of old) that the test hosts resolve to.
PUBLIC_ADDRESS = "93.184.216.34"


class FakeDNS:
    """Stands in for ``socket.getaddrinfo``: the names in ``answers`` resolve to their
    addresses, other names are not found, literal addresses are themselves (no test reaches a
    real resolver). ``lookups`` lists the names asked for."""

    def __init__(self):
        self.answers: dict[str, list[str]] = {
            "hooks.example.com": [PUBLIC_ADDRESS],
            "other.example.com": [PUBLIC_ADDRESS],
            "elsewhere.example.com": [PUBLIC_ADDRESS],
            "localhost": ["127.0.0.1", "::1"],
        }
        self.lookups: list[str] = []
        self._getaddrinfo = socket.getaddrinfo

    def __call__(self, host, port, *args, **kwargs):
        try:
            ipaddress.ip_address(host)
        except ValueError:
            pass
        else:
            return self._getaddrinfo(host, port, *args, **kwargs)
        self.lookups.append(host)
        if host not in self.answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (
                socket.AF_INET6 if ":" in address else socket.AF_INET,
                socket.SOCK_STREAM,
                socket.IPPROTO_TCP,
                "",
                (address, port or 0, 0, 0) if ":" in address else (address, port or 0),
            )
            for address in self.answers[host]
        ]
