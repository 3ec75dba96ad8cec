"""Cross-origin policy of the Engine.IO endpoint.

Owns: ``CorsPolicy``: whether a request's Origin is allowed (a refused origin gets Engine.IO error 4,
HTTP 403), the ``Access-Control-*`` headers of the responses (made once per origin: a polling client
asks for them on every request), and the answer to a preflight OPTIONS. Knows nothing of Engine.IO
sessions.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from server.http.types import Request, Response

_ORIGINS_KEPT = 256


def _same_origin(origin: str, host: str) -> bool:
    try:
        parts = urlsplit(origin)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(host) and parts.netloc.lower() == host.lower()


class CorsPolicy:
    """``allowed``: None (same origin only), ``"*"`` (any), or a list of origins."""

    __slots__ = ("_any", "_by_origin", "_credentials", "_origins", "_same_origin")

    def __init__(self, allowed: str | list[str] | None, credentials: bool) -> None:
        self._any = allowed == "*"
        self._origins: frozenset[str] | None = (
            None if allowed is None or self._any else frozenset(o.rstrip("/") for o in allowed)
        )
        self._credentials = credentials
        self._by_origin: dict[str, list[tuple[str, str]]] = {}  # the headers() of each origin seen lately
        self._same_origin: dict[tuple[str, str], bool] = {}  # (origin, host) seen lately: same origin?

    def allows(self, request: Request) -> bool:
        """A request without an Origin header (not a browser) is always allowed."""
        origin = request.headers.get("origin")
        if origin is None or self._any:
            return True
        if self._origins is not None:
            return origin.rstrip("/") in self._origins
        host = request.headers.get("host", "")
        key = (origin, host)
        same = self._same_origin.get(key)
        if same is None:
            if len(self._same_origin) >= _ORIGINS_KEPT:
                self._same_origin.clear()
            same = self._same_origin[key] = _same_origin(origin, host)
        return same

    def headers(self, request: Request) -> list[tuple[str, str]]:
        """The ``Access-Control-*`` headers for a response to an allowed request (a new list)."""
        origin = request.headers.get("origin")
        if origin is None:
            return []
        headers = self._by_origin.get(origin)
        if headers is None:
            if len(self._by_origin) >= _ORIGINS_KEPT:
                self._by_origin.clear()
            headers = self._by_origin[origin] = self._headers_for(origin)
        return headers.copy()

    def _headers_for(self, origin: str) -> list[tuple[str, str]]:
        if self._any and not self._credentials:
            return [("Access-Control-Allow-Origin", "*")]
        headers = [("Access-Control-Allow-Origin", origin), ("Vary", "Origin")]
        if self._credentials:
            headers.append(("Access-Control-Allow-Credentials", "true"))
        return headers

    def preflight(self, request: Request) -> Response:
        """204 with the allowed methods and the requested headers (the caller checked ``allows``)."""
        headers = self.headers(request)
        headers.append(("Access-Control-Allow-Methods", "GET,POST,OPTIONS"))
        requested = request.headers.get("access-control-request-headers")
        if requested:
            headers.append(("Access-Control-Allow-Headers", requested))
        return Response(204, b"", headers)
