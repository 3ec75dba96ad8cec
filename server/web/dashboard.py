"""The sessions dashboard at ``/dashboard/``: its static page, its login, its data and its live updates.

Owns: ``Dashboard`` with these routes (everything but the page's own files and the login needs the
login cookie; every POST also needs this server's ``Origin`` and the login's ``X-CSRF-Token``):

    GET  /dashboard/                         the page (static files in ``dashboard_static/``, no build)
    POST /dashboard/api/login  {"token"}     the admin token -> HttpOnly SameSite=Strict cookie + CSRF token
    POST /dashboard/api/logout               forget the login
    GET  /dashboard/api/me                   {"csrf"} for a logged-in browser (a reload stays logged in)
    GET  /dashboard/api/series               the last minutes of connections and events per second
    GET  /dashboard/api/status|sessions...   the admin API's answers (``/admin/status|sessions...``)
    POST /dashboard/api/sessions/ID/passivate|kill

and the ``/dashboard`` Socket.IO namespace (the same cookie checked on connect) on which ``run`` pushes a
``tick`` every second: connection count, events per second, sessions by state. Data reads and actions go
through the admin API's own handler with the admin token added, so its authorization, validation and
paging (server-side, by cursor) are the only ones. Knows nothing of how the admin API reaches the
supervisor beyond the two counters it samples, nor of HTTP connections.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import structlog
import trio

from server.http import Request, Response, Router
from server.socketio import ConnectionRefusedError, Server
from server.web.login import (
    Login,
    Logins,
    clear_cookie,
    csrf_matches,
    is_secure,
    same_origin,
    set_cookie,
)
from server.web.static import StaticRoot

log = structlog.get_logger(__name__)

PREFIX = "/dashboard/"
API = PREFIX + "api/"
NAMESPACE = "/dashboard"
ROOM = "dashboard"
STATIC_DIR = Path(__file__).with_name("dashboard_static")
SAMPLE_INTERVAL = 1.0
SERIES_LENGTH = 600  # ten minutes of one-second samples
MAX_LOGIN_BODY = 4096
_FORWARDED = frozenset({"status", "sessions"})
_SESSION_ACTIONS = frozenset({"passivate", "kill"})

AdminHandler = Callable[[Request], Awaitable[Response]]


def _json_error(
    status: int, code: str, message: str, headers: list[tuple[str, str]] | None = None
) -> Response:
    return Response.json(status, {"error": {"code": code, "message": message}}, headers)


def _unauthorized() -> Response:
    return _json_error(401, "unauthorized", "log in with the admin token first")


class Dashboard:
    """``dashboard.mount(router)``, ``dashboard.attach(sio)``, and ``nursery.start(dashboard.run)``."""

    def __init__(
        self,
        *,
        token: str,
        admin: AdminHandler,
        connections: Callable[[], int],
        counters: Callable[[], Mapping[str, int]],
        state_counts: Callable[[], Mapping[str, int]],
        sio: Server | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._admin_token = token
        self.logins = Logins(token, clock=clock)
        self._admin = admin
        self._connections = connections
        self._counters = counters
        self._state_counts = state_counts
        self._sio = sio
        self._clock = clock
        self._files = StaticRoot(STATIC_DIR)
        self._series: deque[dict[str, Any]] = deque(maxlen=SERIES_LENGTH)
        self._viewers: set[str] = set()

    # ---- wiring --------------------------------------------------------------------------------------

    def mount(self, router: Router) -> None:
        router.route(PREFIX.rstrip("/"), self.handle)
        router.mount(PREFIX, self.handle)

    def attach(self, sio: Server) -> None:
        """Register the ``/dashboard`` namespace's handlers on ``sio``."""
        self._sio = sio
        sio.on("connect", self._sio_connect, namespace=NAMESPACE)
        sio.on("disconnect", self._sio_disconnect, namespace=NAMESPACE)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Sample the counters every second and push a ``tick`` to the dashboards watching."""
        previous_events = self._events_total()
        task_status.started()
        while True:
            await trio.sleep(SAMPLE_INTERVAL)
            events = self._events_total()
            sample = {
                "t": round(self._clock(), 3),
                "connections": self._connections(),
                "events_per_second": max(0, events - previous_events) / SAMPLE_INTERVAL,
            }
            previous_events = events
            self._series.append(sample)
            if self._sio is not None and self._viewers:
                tick = {**sample, "sessions_by_state": dict(self._state_counts())}
                self._sio.emit_nowait("tick", tick, to=ROOM, namespace=NAMESPACE)

    def _events_total(self) -> int:
        return int(self._counters().get("events", 0))

    # ---- Socket.IO namespace ------------------------------------------------------------------------

    async def _sio_connect(self, sid: str, environ: Mapping[str, Any], auth: Any = None) -> None:
        headers = {"origin": environ.get("HTTP_ORIGIN", ""), "host": environ.get("HTTP_HOST", ""),
                   "x-forwarded-proto": environ.get("HTTP_X_FORWARDED_PROTO", "")}
        # Same-origin polling GETs carry no Origin (browsers send it cross-origin and on websockets).
        cross_site = bool(headers["origin"]) and not same_origin(headers)
        if self.logins.from_cookie_header(environ.get("HTTP_COOKIE")) is None or cross_site:
            raise ConnectionRefusedError("unauthorized")
        assert self._sio is not None
        self._viewers.add(sid)
        await self._sio.enter_room(sid, ROOM, namespace=NAMESPACE)

    async def _sio_disconnect(self, sid: str, reason: Any = None) -> None:
        self._viewers.discard(sid)

    # ---- HTTP ---------------------------------------------------------------------------------------

    async def handle(self, request: Request) -> Response:
        path = request.path
        if path == PREFIX.rstrip("/"):
            return Response(308, b"", [("Location", PREFIX)])
        if path.startswith(API):
            response = await self._api(request, path[len(API):])
            response.headers.append(("Cache-Control", "no-store"))
            return response
        relative = path[len(PREFIX):] or "index.html"
        response = await self._files.respond(request, relative)
        if response.status == 200 and relative.endswith(".html"):
            response.headers += [
                ("Content-Security-Policy",
                 "default-src 'self'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'"),
                ("X-Frame-Options", "DENY"),
                ("Referrer-Policy", "no-referrer"),
            ]
        return response

    async def _api(self, request: Request, rest: str) -> Response:
        parts = [p for p in rest.split("/") if p]
        if parts == ["login"]:
            return self._login(request)
        login = self.logins.from_cookie_header(request.headers.get("cookie"))
        if login is None:
            return _unauthorized()
        if request.method not in ("GET", "HEAD"):
            refusal = self._refuse_cross_site(request, login)
            if refusal is not None:
                return refusal
        if parts == ["logout"]:
            return self._logout(request, login)
        if parts == ["me"]:
            return Response.json(200, {"csrf": login.csrf, "expires_at": login.expires_at})
        if parts == ["series"]:
            return Response.json(200, {"interval": SAMPLE_INTERVAL, "samples": list(self._series)})
        if not parts or parts[0] not in _FORWARDED:
            return _json_error(404, "not_found", f"no dashboard route {request.path}")
        if request.method == "POST" and not (len(parts) == 3 and parts[2] in _SESSION_ACTIONS):
            return _json_error(405, "method_not_allowed", "only passivate and kill are POSTed")
        if request.method == "POST":
            log.info("dashboard.action", action=parts[2], session_id=parts[1], remote=request.remote[0])
        return await self._admin(dataclasses.replace(
            request,
            path="/admin/" + "/".join(parts),
            target="/admin/" + rest,
            headers={"authorization": f"Bearer {self._admin_token}"},
            body=b"",
        ))

    def _refuse_cross_site(self, request: Request, login: Login) -> Response | None:
        if not same_origin(request.headers):
            log.warning("dashboard.cross_origin_refused", origin=request.headers.get("origin"),
                        remote=request.remote[0])
            return _json_error(403, "cross_origin", "request not from this server's origin")
        if not csrf_matches(login, request.headers.get("x-csrf-token")):
            return _json_error(403, "csrf", "missing or wrong X-CSRF-Token")
        return None

    def _login(self, request: Request) -> Response:
        if request.method != "POST":
            return _json_error(405, "method_not_allowed", "POST the token", [("Allow", "POST")])
        if not same_origin(request.headers):
            return _json_error(403, "cross_origin", "request not from this server's origin")
        if not request.headers.get("content-type", "").startswith("application/json"):
            return _json_error(415, "unsupported_media_type", "send JSON: {\"token\": \"...\"}")
        if len(request.body) > MAX_LOGIN_BODY:
            return _json_error(413, "too_large", "login body too large")
        try:
            given = json.loads(request.body).get("token")
        except (ValueError, AttributeError):
            given = None
        if not isinstance(given, str) or not self.logins.token_matches(given):
            log.info("dashboard.login_refused", remote=request.remote[0])
            return _json_error(401, "unauthorized", "wrong admin token")
        login = self.logins.create()
        log.info("dashboard.login", remote=request.remote[0])
        cookie = set_cookie(login, secure=is_secure(request.headers))
        return Response.json(200, {"csrf": login.csrf, "expires_at": login.expires_at},
                             [("Set-Cookie", cookie)])

    def _logout(self, request: Request, login: Login) -> Response:
        self.logins.drop(login.login_id)
        return Response.json(200, {"logged_out": True},
                             [("Set-Cookie", clear_cookie(secure=is_secure(request.headers)))])
