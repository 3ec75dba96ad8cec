"""Configuration of the Engine.IO server.

Owns: ``EngineConfig``, every Engine.IO option with its documented default (the Node engine.io 6.6
defaults where Node has the option). Knows nothing of sockets or HTTP; passed down explicitly, no globals.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from server.engineio.address_cap import parse_networks

TRANSPORTS = ("polling", "websocket")


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """Engine.IO options. Times in seconds (the handshake reports them in milliseconds), sizes in bytes."""

    ping_interval: float = 25.0
    """The server sends a ping this long after the handshake and after each pong."""
    ping_timeout: float = 20.0
    """After a ping, the client has this long to answer before the socket closes with "ping timeout"."""
    max_payload: int = 1_000_000
    """Largest polling POST body (413 above it) and largest WebSocket message (the socket closes)."""
    upgrade_timeout: float = 10.0
    """A websocket probe that has not finished the upgrade (``2probe`` .. ``5``) by then is closed."""
    close_linger: float = 20.0
    """When the server closes a polling socket while no GET is pending, how long it keeps the session so
    the next GET can collect the remaining packets and the close packet."""
    client_close_linger: float = 1.0
    """When the client closes a polling socket (``1`` in a POST) while no GET is pending, how long the
    sid stays known so a GET sent together with the close is answered ``6`` (as when it arrives first)
    rather than 400; later requests get 400."""
    cors_allowed_origins: str | list[str] | None = None
    """None: same origin only (the Origin's host must be the Host header); ``"*"``: any origin; a list:
    exactly these origins (``"https://example.com"``). Requests without an Origin header are allowed."""
    cors_credentials: bool = True
    """Send ``Access-Control-Allow-Credentials: true`` to allowed origins."""
    max_buffered_packets: int = 1_000
    """Packets a polling socket may hold for its next GET; one more closes it ("transport error")."""
    allow_upgrades: bool = True
    """Offer (and accept) the polling -> websocket upgrade."""
    transports: tuple[str, ...] = TRANSPORTS
    """Transports accepted; a request for another gets error 0 "Transport unknown"."""
    path: str = "/engine.io/"
    """Where the server is mounted (informational: the router decides; Socket.IO mounts at /socket.io/)."""
    disconnect_grace: float = 5.0
    """On cancellation (server shutdown), how long ``engine_disconnect`` may run, shielded."""
    max_connections_per_address: int | None = None
    """At most this many open Engine.IO connections per client address (None: no cap). Behind a reverse
    proxy, list it in ``trusted_proxies`` so that the address is the client's, not the proxy's."""
    trusted_proxies: tuple[str, ...] = ()
    """Proxies (IP addresses or networks) whose ``X-Forwarded-For`` header names the client's address;
    from anyone else the header is ignored."""

    def __post_init__(self) -> None:
        for name in self.transports:
            if name not in TRANSPORTS:
                raise ValueError(f"unknown transport {name!r}")
        if self.max_buffered_packets < 1:
            raise ValueError("max_buffered_packets must be positive")
        if self.max_connections_per_address is not None and self.max_connections_per_address < 1:
            raise ValueError("max_connections_per_address must be positive (or None: no cap)")
        parse_networks(self.trusted_proxies)  # a bad entry fails here, at load time

    def with_(self, **changes: object) -> EngineConfig:
        """A copy with some fields changed: ``config.with_(ping_interval=0.3)``."""
        return replace(self, **changes)  # type: ignore[arg-type]

    def upgrades(self, transport: str) -> list[str]:
        """The upgrades offered in the handshake of a socket opened with ``transport``."""
        if transport == "polling" and self.allow_upgrades and "websocket" in self.transports:
            return ["websocket"]
        return []
