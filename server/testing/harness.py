"""Run the whole Session Supervisor in-process for a test: real sockets on 127.0.0.1, trio-native clients.

Owns: ``open_supervisor`` (async context manager), ``start_supervisor`` (into a nursery the caller owns),
``SupervisorHandle`` (url, app, supervisor, store; ``connect``, ``wait_idle``, ``wait_passivated``,
``advance_past_close_delay``, ``shutdown``) and the free function ``advance_past_close_delay``. Every task it
starts (the server, each client) lives in the nursery the handle was started in and is closed, clients
first, when the handle closes. Knows the assembled ``server.app.SupervisorApp`` and the trio client; nothing
of pytest (``server.testing.plugin`` turns this into fixtures).

Time: under ``trio.testing.MockClock(autojump_threshold=0)`` (pytest-trio's ``autojump_clock``) waiting for a
close delay costs no real time. Real sockets work with it because in-process loopback data is readable as
soon as it is written, so the scheduler is never idle while bytes are in flight. Worker threads (SQLite) are
the exception; a SQLite store is therefore wrapped in ``ClockSafeStore``. Other processes (Node, a server
subprocess) are not covered: test them on the real clock.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import fields
from pathlib import Path
from typing import Any

import trio

from actors.agent import AgentFactory, load_agent_factory
from actors.config import SupervisorConfig
from actors.stores.base import Store
from actors.stores.memory import MemoryStore
from actors.stores.sqlite import SqliteStore
from actors.stores.url import open_store
from actors.supervisor import SessionInfo, Supervisor
from server.app import SupervisorApp
from server.client import Client, open_client
from server.config import ServeConfig
from server.gateway.auth import Authenticator
from server.testing.clocksafe import ClockSafeStore

__all__ = ["SupervisorHandle", "advance_past_close_delay", "open_supervisor", "start_supervisor"]

_SERVE_FIELDS = frozenset(f.name for f in fields(ServeConfig))
_SUPERVISOR_FIELDS = frozenset(f.name for f in fields(SupervisorConfig))
_POLL = 0.01  # seconds between looks at a session's state (virtual under a MockClock)

StoreSpec = str | Path | Store
AgentSpec = str | AgentFactory | None


class SupervisorHandle:
    """A running in-process server. ``url`` is ``http://127.0.0.1:<port>``."""

    def __init__(self, app: SupervisorApp, nursery: trio.Nursery, tmpdir: Path | None) -> None:
        self.app = app
        self._nursery = nursery
        self._tmpdir = tmpdir
        self._clients: list[tuple[trio.Event, trio.Event]] = []  # (stop, finished) per client task
        self._stopped = trio.Event()
        self._closed = False

    @property
    def url(self) -> str:
        return self.app.url

    @property
    def supervisor(self) -> Supervisor:
        return self.app.supervisor

    @property
    def store(self) -> Store:
        """The store the server uses (a SQLite store is wrapped in ``ClockSafeStore``; ``.inner`` is it)."""
        return self.app.store

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite file, when the store is one (pass it as ``store=`` to a second server: a restart)."""
        store = self.store.inner if isinstance(self.store, ClockSafeStore) else self.store
        return store.path if isinstance(store, SqliteStore) else None

    # -- clients ---------------------------------------------------------------------------------------

    async def connect(
        self,
        conversation_id: str | None,
        latest_event_id: int | None = -1,
        token: str | None = None,
        *,
        query: Mapping[str, Any] | None = None,
        auth: Mapping[str, Any] | None = None,
        reconnect: bool = False,
        **options: Any,
    ) -> Client:
        """Connect a trio-native Socket.IO client to the session ``conversation_id``.

        The query carries ``conversation_id`` and ``latest_event_id`` (None: leave either out), the auth
        ``{"token": token}``; ``query`` / ``auth`` add or override entries. ``options`` go to
        ``server.client.open_client`` (``reconnect`` is off by default: a test sees every disconnect).
        Raises ``server.client.ConnectError`` when the server refuses (its ``.data["msg_id"]`` says why).
        The client is closed when the handle closes, or earlier by ``await client.aclose()``.
        """
        full_query: dict[str, Any] = {}
        if conversation_id is not None:
            full_query["conversation_id"] = conversation_id
        if latest_event_id is not None:
            full_query["latest_event_id"] = str(latest_event_id)
        full_query.update(query or {})
        full_auth: dict[str, Any] | None = {"token": token} if token is not None else None
        if auth is not None:
            full_auth = {**(full_auth or {}), **auth}
        stop, finished = trio.Event(), trio.Event()

        async def run_client(*, task_status: trio.TaskStatus[Client]) -> None:
            try:
                async with open_client(
                    self.url, query=full_query, auth=full_auth, reconnect=reconnect, **options
                ) as client:
                    task_status.started(client)
                    await stop.wait()
            finally:
                finished.set()

        client: Client = await self._nursery.start(run_client)
        self._clients.append((stop, finished))
        return client

    # -- sessions and time -----------------------------------------------------------------------------

    def info(self, session_id: str) -> SessionInfo | None:
        """The live session's introspection record, None when it is not live (passivated or never seen)."""
        return self.supervisor.info(session_id)

    async def wait_until(self, session_id: str, *states: str, timeout: float = 60.0) -> None:  # noqa: ASYNC109
        """Wait until the session is in one of ``states`` (``"passivated"`` means: not live)."""
        with trio.fail_after(timeout):
            while True:
                info = self.info(session_id)
                state = "passivated" if info is None else info.state
                if state in states:
                    return
                await trio.sleep(_POLL)

    async def wait_idle(self, session_id: str, timeout: float = 60.0) -> None:  # noqa: ASYNC109
        """Wait until the session has no connection and no work (IDLE: its close-delay clock runs)."""
        await self.wait_until(session_id, "idle", timeout=timeout)

    async def wait_passivated(self, session_id: str, timeout: float = 60.0) -> None:  # noqa: ASYNC109
        await self.wait_until(session_id, "passivated", timeout=timeout)

    async def advance_past_close_delay(self, *session_ids: str) -> None:
        """See ``advance_past_close_delay``."""
        await advance_past_close_delay(self.app, *session_ids)

    # -- ending ----------------------------------------------------------------------------------------

    async def close_clients(self) -> None:
        for stop, _ in self._clients:
            stop.set()
        for _, finished in self._clients:
            await finished.wait()
        self._clients.clear()

    async def shutdown(self) -> None:
        """Close every client of this handle, then shut the server down gracefully (sessions are
        passivated: their snapshots saved, their connections told STATUS$STOPPED)."""
        await self.close_clients()
        await self.app.shutdown()
        await self._stopped.wait()

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            await self.shutdown()
        finally:
            if self._tmpdir is not None:
                shutil.rmtree(self._tmpdir, ignore_errors=True)


async def advance_past_close_delay(app: SupervisorApp, *session_ids: str, timeout: float = 60.0) -> None:  # noqa: ASYNC109
    """Let time pass until the given sessions (default: every live session) have been passivated.

    Each session is first waited for to become IDLE (its last connection's Leave processed), then time
    moves past the latest of their idle deadlines (close_delay plus jitter), then this waits until the
    supervisor has persisted and removed them. Under an autojump MockClock it takes no real time; on the
    real clock it really sleeps. Raises ``ValueError`` when close_delay is None (sessions never passivate)
    and ``trio.TooSlowError`` if they are not gone within ``timeout`` seconds after their deadline.
    """
    supervisor = app.supervisor
    if supervisor.config.close_delay is None:
        raise ValueError("close_delay is None: sessions never passivate on their own")
    targets = list(session_ids) or [info.session_id for info in supervisor.sessions()]
    with trio.fail_after(timeout):
        deadline_in = 0.0
        for session_id in targets:
            while True:
                info = supervisor.info(session_id)
                if info is None:
                    break
                if info.state == "idle" and info.idle_deadline_in is not None:
                    deadline_in = max(deadline_in, info.idle_deadline_in)
                    break
                await trio.sleep(_POLL)
    await trio.sleep(deadline_in + _POLL)
    with trio.fail_after(timeout):
        for session_id in targets:
            # Polling: the supervisor offers no per-session event to wait on (its state is introspection).
            while supervisor.info(session_id) is not None:  # noqa: ASYNC110
                await trio.sleep(_POLL)


def _make_store(spec: StoreSpec) -> tuple[Store, Path | None]:
    """The store and the temporary directory to remove afterwards (for ``"sqlite"``)."""
    if not isinstance(spec, str | Path):
        return spec, None
    if isinstance(spec, Path):
        return ClockSafeStore(SqliteStore(spec)), None
    if spec == "memory":
        return MemoryStore(), None
    if spec == "sqlite":
        tmpdir = Path(tempfile.mkdtemp(prefix="supervisor-test-"))
        return ClockSafeStore(SqliteStore(tmpdir / "supervisor.db")), tmpdir
    store = open_store(spec)
    return (ClockSafeStore(store) if isinstance(store, SqliteStore) else store), None


def _agent_factory(agent: AgentSpec) -> AgentFactory | None:
    if isinstance(agent, str):
        return load_agent_factory(agent)
    return agent


async def start_supervisor(
    nursery: trio.Nursery,
    *,
    store: StoreSpec = "memory",
    agent: AgentSpec = "echo",
    close_delay: float | None = 120.0,
    close_delay_jitter: float = 0.0,
    api_keys: Mapping[str, str] | None = None,
    auth_hook: str | None = None,
    authenticator: Authenticator | None = None,
    **options: Any,
) -> SupervisorHandle:
    """Start a server in ``nursery`` on 127.0.0.1, port 0; return its handle once it listens.

    ``store``: ``"memory"`` (default), ``"sqlite"`` (a fresh file in a temporary directory, removed at
    close), a SQLite file ``Path`` or store URL (e.g. to restart on the same file), or a ``Store`` object
    (not yet opened: the server opens and closes it). ``agent``: ``"echo"``, ``"none"``, ``"module:Class"``,
    an agent factory (a class works), or None (no agent). ``close_delay`` in seconds (None: never);
    ``close_delay_jitter`` defaults to 0 so deadlines are exact. ``api_keys`` (key -> user id),
    ``auth_hook`` (``"module:callable"``) or ``authenticator`` choose client authentication (default: none).
    ``options`` are ``ServeConfig`` fields (``max_action_bytes``, ``ping_interval``...) and
    ``SupervisorConfig`` fields (``mailbox_size``, ``connection_lag_limit``, ``turn_watchdog``...).
    Close the handle with ``await handle.aclose()`` before the nursery ends (``open_supervisor`` does).
    """
    serve_opts = {k: v for k, v in options.items() if k in _SERVE_FIELDS}
    sup_opts = {k: v for k, v in options.items() if k in _SUPERVISOR_FIELDS and k not in _SERVE_FIELDS}
    unknown = set(options) - _SERVE_FIELDS - _SUPERVISOR_FIELDS
    if unknown:
        raise TypeError(f"unknown supervisor option(s): {', '.join(sorted(unknown))}")
    for reserved in ("host", "port", "store_url", "agent"):
        if reserved in serve_opts:
            raise TypeError(f"{reserved!r} is chosen by the harness; use the dedicated argument")
    config = ServeConfig(
        host="127.0.0.1",
        port=0,
        close_delay=close_delay,
        api_keys=dict(api_keys or {}),
        auth_hook=auth_hook,
        **serve_opts,
    )
    supervisor_config = SupervisorConfig(
        close_delay=close_delay,
        close_delay_jitter=close_delay_jitter,
        max_live_sessions=config.max_live_sessions,
        max_sessions_per_user=config.max_sessions_per_user,
        **sup_opts,
    )
    the_store, tmpdir = _make_store(store)
    try:
        app = SupervisorApp(
            config,
            store=the_store,
            agent_factory=_agent_factory(agent),
            authenticator=authenticator,
            supervisor_config=supervisor_config,
        )
    except BaseException:
        if tmpdir is not None:
            shutil.rmtree(tmpdir, ignore_errors=True)
        raise
    handle = SupervisorHandle(app, nursery, tmpdir)

    async def serve(*, task_status: trio.TaskStatus[None]) -> None:
        try:
            async with trio.open_nursery() as inner:
                await inner.start(app.run)
                task_status.started()
        finally:
            handle._stopped.set()

    await nursery.start(serve)
    return handle


@asynccontextmanager
async def open_supervisor(**options: Any) -> AsyncIterator[SupervisorHandle]:
    """``async with open_supervisor(agent=MyAgent, close_delay=5) as server: ...``: a server for the block,
    shut down gracefully (clients first) at its end. Options as for ``start_supervisor``."""
    async with trio.open_nursery() as nursery:
        handle = await start_supervisor(nursery, **options)
        try:
            yield handle
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(60):
                await handle.aclose()
            nursery.cancel_scope.cancel()
