"""The assembled server: store, supervisor, Socket.IO stack, gateway and HTTP routes in one nursery.

Owns: ``SupervisorApp`` (build everything from a ``server.config.Config``, run it, shut it down gracefully
in the right order) and ``run_until_signal`` (SIGINT/SIGTERM handling for ``supervisor serve``). Knows
nothing of command-line parsing (``server.cli``) nor of protocol details (the layers below).
"""

from __future__ import annotations

import secrets
import signal
import time
from typing import Any

import structlog
import trio

from actors.agent import AgentFactory
from actors.cluster.node import ClusterNode, cluster_placement
from actors.stores.base import Store
from actors.stores.redis import RedisStore
from actors.stores.url import open_store
from actors.supervisor import Supervisor
from server.adminui import AdminNamespace
from server.cluster_metrics import ClusterCollector
from server.config import Config
from server.config_toml import as_dict
from server.gateway.auth import Authenticator, build_authenticator
from server.gateway.gateway import Gateway
from server.http import HttpServer, Request, Response, Router
from server.metrics import LiveSource, Metrics
from server.operator_api.api import OperatorApi
from server.runtimes import build_agent_factory, with_runtime_defaults, workspace_deleter
from server.socketio import Server
from server.web import mount_web

log = structlog.get_logger(__name__)

_UNSET: Any = object()


class SupervisorApp:
    """One server process's worth of parts. ``await nursery.start(app.run)`` returns the bound address.

    ``config`` is the whole tree (``server.config.Config``); each part gets its own section as it is.
    ``store``, ``agent_factory`` and ``authenticator`` replace what ``[store] url``, ``[runtime] agent``
    and the ``[gateway]`` keys/hook would build (the test harness passes objects)."""

    def __init__(
        self,
        config: Config | None = None,
        *,
        store: Store | None = None,
        agent_factory: AgentFactory | None = _UNSET,
        authenticator: Authenticator | None = None,
    ) -> None:
        self.config = config = with_runtime_defaults(config if config is not None else Config())
        self.store: Store = store if store is not None else open_store(config.store.resolved_url)
        factory = build_agent_factory(config) if agent_factory is _UNSET else agent_factory
        self.metrics = Metrics()
        self.placement = cluster_placement(
            self.store, node_id=config.cluster.node_id, lease_ttl=config.cluster.lease_ttl
        )
        self.supervisor = Supervisor(
            self.store, factory, config.supervisor,
            on_event=self.metrics.on_event, on_observe=self.metrics.observe, placement=self.placement,
        )
        self.cluster: ClusterNode | None = None
        if self.placement is not None:
            assert isinstance(self.store, RedisStore)
            self.cluster = ClusterNode(self.store, self.placement, self.supervisor)
        # Inline handlers and closing a refused connection are the gateway's contract, not options.
        self.sio = Server(async_handlers=False, close_on_refusal=True, **config.socketio.server_options())
        self.sio.add_instrumentation(self.metrics.socketio)
        gateway = config.gateway
        self.authenticator = authenticator or build_authenticator(gateway.api_keys, gateway.auth_hook)
        self.gateway = Gateway(self.sio, self.supervisor, self.authenticator, config.gateway)
        self.router = Router()
        self.router.route("/healthz", self._healthz)
        self.http: HttpServer | None = None
        self.started_at = time.time()
        # No token configured (in-process use): a random one, readable as ``app.admin_token``.
        self.admin_token: str = config.admin.token or secrets.token_urlsafe(32)
        self.metrics.watch(LiveSource(
            sessions=self.supervisor.sessions,
            state_counts=self.supervisor.state_counts,
            connections=lambda: self.gateway.connection_count,
            started_at=self.started_at,
        ))
        self.admin = OperatorApi(
            token=self.admin_token, supervisor=self.supervisor, gateway=self.gateway, sio=self.sio,
            metrics=self.metrics, started_at=self.started_at, config_view=as_dict(config, mask=True),
            delete_workspace=workspace_deleter(config),
            cluster=self.cluster,
        )
        if self.cluster is not None:
            self.metrics.registry.register(ClusterCollector(self.cluster.counters))
        self.admin.mount(self.router)
        self.web = mount_web(
            self.router, sio=self.sio, admin=self.admin.handle, token=self.admin_token,
            connections=lambda: self.gateway.connection_count, counters=lambda: self.supervisor.counters,
            state_counts=self.supervisor.state_counts,
        )
        self.admin_ui: AdminNamespace | None = None
        if config.admin.ui.enabled:  # [admin.ui]: ``supervisor serve --admin-ui``
            ui = config.admin.ui
            self.admin_ui = AdminNamespace(ui, token=self.admin_token, data_for=self._socket_data)
            self.admin_ui.attach(self.sio)
            self.sio.add_instrumentation(self.admin_ui.observer)
        self._cancel: trio.CancelScope | None = None
        self._shutting_down = False

    @property
    def url(self) -> str:
        if self.http is None or self.http.address is None:
            raise RuntimeError("the server is not listening yet")
        host, port = self.http.address[:2]
        return f"http://{host}:{port}"

    async def run(self, *, task_status: trio.TaskStatus[tuple[str, int]] = trio.TASK_STATUS_IGNORED) -> None:
        """Open the store, start the supervisor and the HTTP stack; serve until ``shutdown`` or cancel."""
        await self.store.open()
        try:
            with trio.CancelScope() as scope:
                self._cancel = scope
                async with trio.open_nursery() as nursery:
                    await nursery.start(self.supervisor.run)
                    if self.cluster is not None:
                        await nursery.start(self.cluster.run)
                    await nursery.start(self.web.dashboard.run)
                    if self.admin_ui is not None:
                        await nursery.start(self.admin_ui.run)
                    self.http = await self._start_http(nursery)
                    assert self.http.address is not None
                    task_status.started(self.http.address)
        finally:
            with trio.CancelScope(shield=True):
                await self.store.close()

    async def _start_http(self, nursery: trio.Nursery) -> HttpServer:
        async def serve(*, task_status: trio.TaskStatus[HttpServer]) -> None:
            http = self.config.http
            await self.sio.serve(
                http.host,
                http.port,
                router=self.router,
                http_config=http,
                engine_config=self.config.engineio,
                task_status=task_status,
            )

        http: HttpServer = await nursery.start(serve)
        return http

    async def shutdown(self) -> None:
        """Graceful stop: refuse new connections, passivate every session within the budget (its clients
        get STATUS$STOPPED), close the remaining connections, close the store, end ``run``."""
        if self._shutting_down:
            return
        self._shutting_down = True
        log.info("server.shutting_down", live_sessions=self.supervisor.live_count)
        remaining = await self.supervisor.shutdown(self.config.supervisor.shutdown_budget)
        if self.http is not None:
            await self.http.aclose()
        log.info("server.stopped", unpersisted_sessions=remaining)
        if self._cancel is not None:
            self._cancel.cancel()

    def _socket_data(self, sid: str, namespace: str) -> dict[str, Any]:
        """An Admin UI socket's ``data``: its session and the session's actor state."""
        session_id = self.gateway.session_of(sid)
        if session_id is None:
            return {}
        info = self.supervisor.info(session_id)
        return {"sessionId": session_id, "state": info.state if info is not None else "passivated"}

    async def _healthz(self, request: Request) -> Response:
        if self.cluster is not None:
            problem = await self.cluster.health_problem()
            if problem is not None:
                return Response.json(503, {"status": "unhealthy", "reason": problem,
                                           "live_sessions": self.supervisor.live_count})
        return Response.json(200, {"status": "ok", "live_sessions": self.supervisor.live_count})


async def run_until_signal(app: SupervisorApp, *, on_ready: Any = None) -> None:
    """Run ``app`` until SIGINT or SIGTERM, then shut it down gracefully."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            address = await nursery.start(app.run)
            if on_ready is not None:
                on_ready(address)
            async for signum in signals:
                log.info("server.signal", signal=signal.Signals(signum).name)
                await app.shutdown()
                break
            nursery.cancel_scope.cancel()
