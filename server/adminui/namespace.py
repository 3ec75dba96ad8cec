"""The ``/admin`` Socket.IO namespace the official ``@socket.io/admin-ui`` 0.5.x talks to.

Owns: ``AdminNamespace`` (its options: ``server.adminui.config``): the login (username ``admin``, password =
the admin token or a bcrypt hash checked in ``trio.to_thread``; a failure is exactly ``invalid
credentials``; a ``sessionId`` from an earlier login is accepted while it lasts), the ``session`` event sent
shortly *after* the CONNECT ack (the UI listens for it only once connected; Node sends it before, and loses
the login on reload), ``config`` with the supported features, ``all_sockets`` in development mode,
``server_stats`` every 2 s to all admins, the ``join``/``leave``/``_disconnect`` commands unless read-only,
and refreshing each socket's ``data`` (``data_for``: session id, actor state) so the UI gets
``socket_updated``. What the sockets are and do comes from ``AdminObserver`` (the instrumentation hooks).
Knows nothing of HTTP, the gateway or the supervisor: ``data_for`` is a plain callable.
"""

from __future__ import annotations

import hmac
import os
import secrets
import socket
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import structlog
import trio

from server.adminui.config import AdminUiConfig
from server.adminui.observer import AdminObserver
from server.socketio import ConnectionRefusedError, Server

log = structlog.get_logger(__name__)

ADMINS_ROOM = "__admin_ui"
STATS_INTERVAL = 2.0
SESSION_DELAY = 0.05  # after the CONNECT ack (see the module doc)
SESSION_TTL = 12 * 3600.0
MAX_UI_SESSIONS = 256
USERNAME = "admin"
INVALID = "invalid credentials"
WRITE_FEATURES = ("EMIT", "JOIN", "LEAVE", "DISCONNECT", "MJOIN", "MLEAVE", "MDISCONNECT")


def features(config: AdminUiConfig) -> list[str]:
    out = [] if config.readonly else list(WRITE_FEATURES)
    out.append("AGGREGATED_EVENTS")
    if config.mode == "development":
        out.append("ALL_EVENTS")
    return out


def _check_bcrypt(password: str, hashed: str) -> bool:
    import bcrypt

    try:
        return bool(bcrypt.checkpw(password.encode(), hashed.encode()))
    except ValueError:
        return False


class AdminNamespace:
    """``ns.attach(sio)``, ``sio.add_instrumentation(ns.observer)``, ``nursery.start(ns.run)``."""

    def __init__(
        self,
        config: AdminUiConfig,
        *,
        token: str,
        data_for: Callable[[str, str], dict[str, Any]] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self._token = token
        self._data_for = data_for
        self._clock = clock
        self._started = clock()
        self._sio: Server | None = None
        self._admins: set[str] = set()
        self._ui_sessions: OrderedDict[str, float] = OrderedDict()  # sessionId -> expiry
        self.server_id = f"{socket.gethostname()}#{os.getpid()}"
        self.observer = AdminObserver(
            admin_namespace=config.namespace, development=config.mode == "development", sink=self._send,
            clock=clock, event_budget=config.max_events_per_second,
        )

    # ---- wiring -------------------------------------------------------------------------------------

    def attach(self, sio: Server) -> None:
        self._sio = sio
        ns = self.config.namespace
        sio.on("connect", self._connect, namespace=ns)
        sio.on("disconnect", self._disconnect, namespace=ns)
        if not self.config.readonly:
            sio.on("join", self._join, namespace=ns)
            sio.on("leave", self._leave, namespace=ns)
            sio.on("_disconnect", self._disconnect_command, namespace=ns)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """``server_stats`` to every admin every 2 s, and the sockets' ``data`` refreshed."""
        task_status.started()
        while True:
            await trio.sleep(STATS_INTERVAL)
            if self._admins:
                self.refresh_data()
                self._send("server_stats", (self.server_stats(),))
            else:
                self.observer.drain_aggregated()  # nobody to tell: keep the buffer small

    def server_stats(self) -> dict[str, Any]:
        obs = self.observer
        return {
            "serverId": self.server_id,
            "hostname": socket.gethostname(),
            "pid": os.getpid(),
            "uptime": max(0.0, self._clock() - self._started),
            "clientsCount": obs.clients_count,
            "pollingClientsCount": obs.polling_clients_count,
            "namespaces": obs.namespaces(),
            "aggregatedEvents": obs.drain_aggregated(),
        }

    def refresh_data(self) -> None:
        if self._data_for is None:
            return
        for record in list(self.observer.sockets.values()):
            if record.nsp != self.config.namespace:
                self.observer.set_data(record.sid, self._data_for(record.sid, record.nsp))

    def _send(self, event: str, args: tuple[Any, ...]) -> None:
        if self._sio is not None and self._admins:
            self._sio.emit_nowait(event, args, to=ADMINS_ROOM, namespace=self.config.namespace)

    # ---- login --------------------------------------------------------------------------------------

    async def check_login(self, auth: Any) -> tuple[bool, bool]:
        """(accepted, fresh login: a ``session`` id is to be sent)."""
        if not isinstance(auth, dict):
            return False, False
        session_id = auth.get("sessionId")
        if isinstance(session_id, str) and self._ui_session_valid(session_id):
            return True, False
        username, password = auth.get("username"), auth.get("password")
        if not isinstance(username, str) or not isinstance(password, str):
            return False, False
        name_ok = hmac.compare_digest(username.encode(), USERNAME.encode())
        if self.config.password_hash:
            hashed = self.config.password_hash
            password_ok = await trio.to_thread.run_sync(_check_bcrypt, password, hashed)
        else:
            password_ok = hmac.compare_digest(password.encode(), self._token.encode())
        return name_ok and password_ok, True

    def _ui_session_valid(self, session_id: str) -> bool:
        expiry = self._ui_sessions.get(session_id)
        if expiry is None:
            return False
        if expiry <= self._clock():
            del self._ui_sessions[session_id]
            return False
        return True

    def _new_ui_session(self) -> str:
        while len(self._ui_sessions) >= MAX_UI_SESSIONS:
            self._ui_sessions.popitem(last=False)
        session_id = secrets.token_hex(8)
        self._ui_sessions[session_id] = self._clock() + SESSION_TTL
        return session_id

    async def _connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        accepted, fresh = await self.check_login(auth)
        if not accepted:
            log.info("adminui.login_refused", sid=sid, remote=environ.get("REMOTE_ADDR"))
            raise ConnectionRefusedError(INVALID)
        assert self._sio is not None
        sio = self._sio
        log.info("adminui.login", sid=sid, remote=environ.get("REMOTE_ADDR"), fresh=fresh)
        await sio.enter_room(sid, ADMINS_ROOM, namespace=self.config.namespace)
        self._admins.add(sid)
        self.observer.watching = True
        ns = self.config.namespace
        # Emitted before the CONNECT ack goes out: python-socketio's server queues them after it.
        sio.emit_nowait("config", {"supportedFeatures": features(self.config)}, to=sid, namespace=ns)
        if self.config.mode == "development":
            self.refresh_data()
            sio.emit_nowait("all_sockets", (self.observer.all_sockets(),), to=sid, namespace=ns)
        if fresh:
            session_id = self._new_ui_session()
            sio.start_background_task(self._send_session, sid, session_id)

    async def _send_session(self, sid: str, session_id: str) -> None:
        await trio.sleep(SESSION_DELAY)
        if self._sio is not None and sid in self._admins:
            self._sio.emit_nowait("session", session_id, to=sid, namespace=self.config.namespace)

    async def _disconnect(self, sid: str, reason: Any = None) -> None:
        self._admins.discard(sid)
        self.observer.watching = bool(self._admins)

    # ---- commands -----------------------------------------------------------------------------------

    async def _join(self, sid: str, nsp: Any = None, room: Any = None, target: Any = None, *_: Any) -> None:
        if not isinstance(nsp, str) or not isinstance(room, str) or self._sio is None:
            return
        for other in self.observer.sids_matching(nsp, target if isinstance(target, str) else None):
            await self._sio.enter_room(other, room, namespace=nsp)

    async def _leave(self, sid: str, nsp: Any = None, room: Any = None, target: Any = None, *_: Any) -> None:
        if not isinstance(nsp, str) or not isinstance(room, str) or self._sio is None:
            return
        for other in self.observer.sids_matching(nsp, target if isinstance(target, str) else None):
            await self._sio.leave_room(other, room, namespace=nsp)

    async def _disconnect_command(
        self, sid: str, nsp: Any = None, close: Any = False, target: Any = None, *_: Any
    ) -> None:
        if not isinstance(nsp, str) or self._sio is None:
            return
        for other in self.observer.sids_matching(nsp, target if isinstance(target, str) else None):
            if other in self._admins:
                continue  # an admin cannot cut its own line from the UI
            log.info("adminui.disconnect", by=sid, sid=other, namespace=nsp, close=bool(close))
            if close is True:
                self._sio.close_connection(other, "forced close")
            else:
                self._sio.disconnect_nowait(other, namespace=nsp)
