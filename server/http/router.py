"""Path routing for the HTTP layer.

Owns: ``Router``, a ``Handler`` that dispatches on the request path: exact routes first (``/healthz``),
then the longest mounted prefix (``/socket.io/``), else 404. Every method (HEAD and OPTIONS included) goes
to the matched handler unchanged: CORS and method checks are the mounted handler's business.
Knows nothing of sockets or of what the handlers do.
"""

from __future__ import annotations

from server.http.types import Handler, Request, Response, WebSocketAccept


async def not_found(request: Request) -> Response:
    return Response(404, b"Not Found\n")


class Router:
    """Dispatch on the path: ``router.mount("/socket.io/", engine)``, ``router.route("/healthz", health)``."""

    __slots__ = ("_exact", "_fallback", "_prefixes")

    def __init__(self, fallback: Handler = not_found) -> None:
        self._exact: dict[str, Handler] = {}
        self._prefixes: list[tuple[str, Handler]] = []  # longest first
        self._fallback = fallback

    def route(self, path: str, handler: Handler) -> None:
        """Serve exactly ``path`` (no prefix matching)."""
        if not path.startswith("/"):
            raise ValueError(f"route path must start with '/': {path!r}")
        self._exact[path] = handler

    def mount(self, prefix: str, handler: Handler) -> None:
        """Serve every path under ``prefix``. A prefix ending in ``/`` also matches the path without that
        slash (``/socket.io/`` serves ``/socket.io`` too, as python-engineio does)."""
        if not prefix.startswith("/"):
            raise ValueError(f"mount prefix must start with '/': {prefix!r}")
        if prefix.endswith("/") and prefix != "/":
            self._exact.setdefault(prefix.rstrip("/"), handler)
        self._prefixes.append((prefix, handler))
        self._prefixes.sort(key=lambda item: len(item[0]), reverse=True)

    def resolve(self, path: str) -> Handler:
        handler = self._exact.get(path)
        if handler is not None:
            return handler
        for prefix, candidate in self._prefixes:
            if path.startswith(prefix):
                return candidate
        return self._fallback

    async def __call__(self, request: Request) -> Response | WebSocketAccept:
        return await self.resolve(request.path)(request)
