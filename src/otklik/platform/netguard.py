"""Addresses an admin may point the server at (vendor API bases, integration webhooks): never the machine
itself or its private network (SSRF: a settings form must not make the server call 127.0.0.1:6379, a cloud
metadata endpoint or an intranet host), unless OTKLIK_ALLOW_PRIVATE_VENDOR_URLS says so (a self-hosted Bot
API server on the LAN, or tests with local stand-ins).

Checked when the address is saved: an IP literal by its range, a name by what it resolves to now; a name that
does not resolve (an offline install) is let through, since it cannot reach anything either.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from otklik.platform.config import get_settings

BLOCKED_NAMES = ("localhost", ".localhost", ".local", ".internal", ".localdomain", ".home.arpa")


def _blocked(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return (address.is_private or address.is_loopback or address.is_link_local or address.is_reserved
            or address.is_multicast or address.is_unspecified or not address.is_global)


def check_public_url(url: str) -> None:
    """ValueError naming the problem when `url` points at a loopback, private, link-local or reserved host."""
    if get_settings().allow_private_vendor_urls:
        return
    try:
        host = urlsplit(url).hostname
    except ValueError:
        raise ValueError("not a valid address") from None
    if not host:
        raise ValueError("the address has no host")
    host = host.rstrip(".").lower()
    if host == "localhost" or host.endswith(BLOCKED_NAMES):
        raise ValueError(f"{host} is this machine or a local network name: the server does not call those "
                         "(OTKLIK_ALLOW_PRIVATE_VENDOR_URLS=true allows it)")
    try:
        addresses = {ipaddress.ip_address(host)}
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
        except (OSError, UnicodeError):
            return  # does not resolve: nothing to reach
        addresses = {ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos}
    for address in addresses:
        if _blocked(address):
            raise ValueError(f"{host} is {address}, a loopback, private, link-local or reserved address: the "
                             "server does not call those (OTKLIK_ALLOW_PRIVATE_VENDOR_URLS=true allows it)")
