"""The admin HTTP API and ``/metrics``, on the server's own port, behind the admin token.

Owns: ``OperatorApi``: routing of ``/admin/...`` requests, bearer-token checks (constant time; 401 JSON
without or with a wrong token), the JSON error shape ``{"error": {"code", "message"}}``, and the calls into
the supervisor, the store and the gateway. Routes:

    GET  /admin/status                              uptime, sessions by state, connections, counters
    GET  /admin/config                              the effective configuration, secrets masked
    GET  /admin/sessions?state=idle,active&after=ID&limit=N   live and passivated sessions, by id
    GET  /admin/sessions/ID                         one session, with its connections and runtime
    DELETE /admin/sessions/ID                       kill it if live, delete its log, snapshot, workspace
    POST /admin/sessions/ID/passivate               persist and end it now
    POST /admin/sessions/ID/kill                    end it without a snapshot (rehydrates from the log)
    GET  /admin/sessions/ID/events?after=N&limit=M  its stored events with id > N
    GET  /metrics                                   Prometheus exposition (``server.metrics``)

Knows nothing of sockets or h11 (``server.http``), of the CLI, or of the session protocol beyond the
gateway's read-only connection list.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import structlog

from actors.errors import ActorError, MailboxClosed
from actors.stores.base import Store, StoreError
from actors.supervisor import Supervisor
from server.gateway.gateway import Gateway
from server.http import Request, Response, Router
from server.metrics import Metrics
from server.operator_api import views
from server.operator_api.cluster_view import ClusterView
from server.operator_api.deletion import delete_session
from server.operator_api.listing import list_sessions
from server.operator_api.token import check_bearer
from server.socketio import Server

log = structlog.get_logger(__name__)

PREFIX = "/admin/"
METRICS_PATH = "/metrics"
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_EVENTS_BYTES = 4 * 1024 * 1024  # one events page stops growing past this much JSON (at least one event)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: list[tuple[str, str]] | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or []

    def response(self) -> Response:
        return error_response(self.status, self.code, self.message, self.headers)


def error_response(
    status: int, code: str, message: str, headers: list[tuple[str, str]] | None = None
) -> Response:
    return Response.json(status, {"error": {"code": code, "message": message}}, headers)


Handler = Callable[[Request, str | None], Awaitable[Response]]


class OperatorApi:
    """Mount with ``api.mount(router)``; every route but ``/healthz`` (not ours) needs the token."""

    def __init__(
        self,
        *,
        token: str,
        supervisor: Supervisor,
        gateway: Gateway,
        sio: Server,
        metrics: Metrics,
        started_at: float,
        config_view: Mapping[str, Any] | None = None,
        delete_workspace: Callable[[str], Awaitable[bool]] | None = None,
        cluster: ClusterView | None = None,
    ) -> None:
        if not token:
            raise ValueError("the admin API needs a non-empty token")
        self._token = token
        self._supervisor = supervisor
        self._gateway = gateway
        self._sio = sio
        self._metrics = metrics
        self._started_at = started_at
        self._cluster = cluster  # cluster mode: node and lease fields (server.operator_api.cluster_view)
        self._config_view = dict(config_view or {})  # already masked by the caller (server.config_toml)
        self._delete_workspace = delete_workspace  # the runtime's workspace of a session, if any
        # (method, action) -> handler; action is None for /admin/sessions/ID itself
        self._session_routes: dict[tuple[str, str | None], Handler] = {
            ("GET", None): self._show,
            ("DELETE", None): self._delete,
            ("POST", "passivate"): self._passivate,
            ("POST", "kill"): self._kill,
            ("GET", "events"): self._events,
        }

    @property
    def _store(self) -> Store:
        return self._supervisor.store

    def mount(self, router: Router) -> None:
        router.mount(PREFIX, self.handle)
        router.route(METRICS_PATH, self.handle_metrics)

    # ---- entry points --------------------------------------------------------------------------------

    async def handle(self, request: Request) -> Response:
        try:
            self._authorize(request)
            return await self._dispatch(request)
        except ApiError as exc:
            return exc.response()
        except StoreError as exc:
            log.warning("admin.store_error", path=request.path, error=str(exc))
            return error_response(503, "store_unavailable", f"the store failed: {exc}")

    async def handle_metrics(self, request: Request) -> Response:
        try:
            self._authorize(request)
            _allow(request, "GET", "HEAD")
        except ApiError as exc:
            return exc.response()
        await self._metrics.refresh_stored_count(self._store.count_sessions)
        body, content_type = self._metrics.render(request.headers.get("accept"))
        return Response(200, b"" if request.method == "HEAD" else body, content_type=content_type)

    def _authorize(self, request: Request) -> None:
        if not check_bearer(request.headers.get("authorization"), self._token):
            given = "authorization" in request.headers
            log.info("admin.unauthorized", path=request.path, remote=request.remote[0], token_given=given)
            raise ApiError(
                401,
                "unauthorized",
                "wrong admin token" if given else "missing admin token (Authorization: Bearer <token>)",
                [("WWW-Authenticate", 'Bearer realm="supervisor-admin"')],
            )

    async def _dispatch(self, request: Request) -> Response:
        parts = [p for p in request.path[len(PREFIX):].split("/") if p] if request.path.startswith(
            PREFIX) else []
        if parts == ["status"]:
            _allow(request, "GET")
            return await self._status(request)
        if parts == ["config"]:
            _allow(request, "GET")
            return Response.json(200, self._config_view)
        if parts == ["sessions"]:
            _allow(request, "GET")
            return await self._list(request)
        if len(parts) in (2, 3) and parts[0] == "sessions":
            action = parts[2] if len(parts) == 3 else None
            methods = [m for (m, a) in self._session_routes if a == action]
            if not methods:
                raise ApiError(404, "not_found", f"no admin route {request.path}")
            _allow(request, *methods)
            return await self._session_routes[(request.method, action)](request, parts[1])
        raise ApiError(404, "not_found", f"no admin route {request.path}")

    # ---- server ------------------------------------------------------------------------------------

    async def _status(self, request: Request) -> Response:
        try:
            stored: int | None = await self._store.count_sessions()
        except StoreError:
            stored = None
        sup = self._supervisor
        body = views.status(
            started_at=self._started_at,
            now=time.time(),
            state_counts=sup.state_counts(),
            stored_sessions=stored,
            connections=self._gateway.connection_count,
            counters=sup.counters,
        )
        if self._cluster is not None:
            body.update(await self._cluster.status_fields())
        return Response.json(200, body)

    # ---- sessions ----------------------------------------------------------------------------------

    async def _list(self, request: Request) -> Response:
        states = _states(request.query.get("state"))
        limit = _int_param(request, "limit", DEFAULT_LIMIT, low=1, high=MAX_LIMIT)
        after = request.query.get("after") or None
        page = await list_sessions(
            self._store, self._supervisor.sessions(), states=states, after=after, limit=limit
        )
        if self._cluster is not None:
            for view in page.sessions:
                view.update(await self._cluster.session_fields(view["session_id"]))
        return Response.json(200, {"sessions": page.sessions, "next_after": page.next_after})

    async def _show(self, request: Request, session_id: str | None) -> Response:
        assert session_id is not None
        info = self._supervisor.info(session_id)
        record = await self._store.load(session_id)
        if info is None and record is None:
            raise _no_session(session_id)
        if info is not None:
            view = views.live_session(info, record)
        else:
            assert record is not None
            view = views.stored_session(record)
        sio = self._sio
        view["connection_details"] = [
            views.connection(c.sid, c.user_id, c.since, sio.get_environ(c.sid), sio.transport(c.sid))
            for c in self._gateway.connections(session_id)
        ]
        if self._cluster is not None:
            view.update(await self._cluster.session_fields(session_id))
        return Response.json(200, view)

    async def _passivate(self, request: Request, session_id: str | None) -> Response:
        assert session_id is not None
        log.info("admin.passivate", session_id=session_id, remote=request.remote[0])
        try:
            state = await self._supervisor.passivate(session_id, "operator")
        except MailboxClosed:
            state = None  # ended between the lookup and the message
        except ActorError as exc:
            raise ApiError(409, exc.code.lower(), str(exc)) from None
        if state is None:
            await self._require_stored(session_id)
        return Response.json(200, {
            "session_id": session_id,
            "was_live": state is not None,
            "state": state or "passivated",
        })

    async def _kill(self, request: Request, session_id: str | None) -> Response:
        assert session_id is not None
        log.info("admin.kill", session_id=session_id, remote=request.remote[0])
        try:
            killed = await self._supervisor.kill(session_id)
        except MailboxClosed:
            killed = False
        except ActorError as exc:
            raise ApiError(409, exc.code.lower(), str(exc)) from None
        if not killed:
            await self._require_stored(session_id)
        return Response.json(200, {"session_id": session_id, "was_live": killed, "state": "passivated"})

    async def _delete(self, request: Request, session_id: str | None) -> Response:
        """Kill the session if live (its runtime ended first), then delete its log, snapshot and workspace."""
        assert session_id is not None
        log.info("admin.delete", session_id=session_id, remote=request.remote[0])
        body = await delete_session(self._supervisor, session_id, self._delete_workspace)
        if body is None:
            raise _no_session(session_id)
        return Response.json(200, body)

    async def _events(self, request: Request, session_id: str | None) -> Response:
        assert session_id is not None
        after = _int_param(request, "after", -1, low=-1)
        limit = _int_param(request, "limit", DEFAULT_LIMIT, low=1, high=MAX_LIMIT)
        events = await self._store.events_after(session_id, after, limit)
        info = self._supervisor.info(session_id)
        if not events and info is None:
            await self._require_stored(session_id)
        texts: list[str] = []
        size = 0
        next_after = after
        for event in events:
            text = event.json_text or json.dumps(event.payload, separators=(",", ":"))
            if texts and size + len(text) > MAX_EVENTS_BYTES:
                break
            texts.append(text)
            size += len(text)
            next_after = event.id
        # The stored JSON text is spliced in as is: no decode/encode round trip per event.
        body = (
            '{"session_id":' + json.dumps(session_id)
            + ',"events":[' + ",".join(texts) + "]"
            + ',"next_after":' + str(next_after)
            + ',"more":' + ("true" if len(texts) < len(events) or len(events) == limit else "false")
            + "}"
        )
        return Response(200, body.encode(), content_type="application/json")

    async def _require_stored(self, session_id: str) -> None:
        if await self._store.load(session_id) is None:
            raise _no_session(session_id)


def _no_session(session_id: str) -> ApiError:
    return ApiError(404, "session_not_found", f"no session {session_id}")


def _allow(request: Request, *methods: str) -> None:
    if request.method not in methods:
        allowed = ", ".join(methods)
        raise ApiError(405, "method_not_allowed", f"{request.method} not allowed here; use {allowed}",
                       [("Allow", allowed)])


def _states(raw: str | None) -> frozenset[str] | None:
    if not raw:
        return None
    states = frozenset(s.strip().lower() for s in raw.split(",") if s.strip())
    unknown = states - set(views.STATES)
    if unknown:
        raise ApiError(400, "bad_request",
                       f"unknown state {', '.join(sorted(unknown))}; states: {', '.join(views.STATES)}")
    return states or None


def _int_param(request: Request, name: str, default: int, *, low: int, high: int | None = None) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, "bad_request", f"{name} must be an integer, not {raw!r}") from None
    if value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f">= {low}"
        raise ApiError(400, "bad_request", f"{name} must be {bounds}")
    return value
