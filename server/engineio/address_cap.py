"""A cap on the Engine.IO connections of one client address, behind trusted reverse proxies or not.

Owns: ``client_address`` (the address a request comes from: the TCP peer, or, when the peer is a trusted
proxy, the nearest untrusted hop of ``X-Forwarded-For``) and ``AddressCap`` (counts open sockets per
address; ``allows`` says whether one more may open). Knows nothing of sockets, transports or HTTP beyond
a request's peer address and headers; the Engine.IO server calls it at each handshake and close.

``X-Forwarded-For`` is believed only from the configured proxies (``[engineio] trusted_proxies``): from
anyone else it is the client's own claim and ignored, so a client cannot dodge the cap by inventing hops.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping

__all__ = ["AddressCap", "client_address", "parse_networks"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(entries: Iterable[str]) -> tuple[Network, ...]:
    """``"10.0.0.1"`` or ``"10.0.0.0/8"`` entries as networks; ``ValueError`` names a bad one."""
    out = []
    for entry in entries:
        try:
            out.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError as exc:
            raise ValueError(f"trusted_proxies: {entry!r} is not an IP address or network: {exc}") from None
    return tuple(out)


def _trusted(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_address(peer: str, headers: Mapping[str, str], networks: tuple[Network, ...]) -> str:
    """The client's address: ``peer`` unless it is a trusted proxy with an ``X-Forwarded-For`` header."""
    if not networks or not _trusted(peer, networks):
        return peer
    hops = [hop.strip() for hop in headers.get("x-forwarded-for", "").split(",") if hop.strip()]
    for hop in reversed(hops):  # nearest first: each trusted proxy appended the address it saw
        if not _trusted(hop, networks):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer  # garbage from beyond the proxies: count it against the proxy's address
    return hops[0] if hops else peer


class AddressCap:
    """At most ``limit`` open sockets per client address (``None``: no cap, nothing counted)."""

    __slots__ = ("_counts", "_networks", "limit")

    def __init__(self, limit: int | None, trusted_proxies: Iterable[str] = ()) -> None:
        self.limit = limit
        self._networks = parse_networks(trusted_proxies)
        self._counts: dict[str, int] = {}

    def address(self, peer: str, headers: Mapping[str, str]) -> str:
        return client_address(peer, headers, self._networks)

    def allows(self, address: str) -> bool:
        return self.limit is None or self._counts.get(address, 0) < self.limit

    def opened(self, address: str) -> None:
        if self.limit is not None:
            self._counts[address] = self._counts.get(address, 0) + 1

    def closed(self, address: str) -> None:
        if self.limit is None:
            return
        left = self._counts.get(address, 0) - 1
        if left > 0:
            self._counts[address] = left
        else:
            self._counts.pop(address, None)

    def count(self, address: str) -> int:
        return self._counts.get(address, 0)
