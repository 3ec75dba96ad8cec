"""The operator's browser surface on the server's own port: static files and the sessions dashboard.

Modules: ``static`` (files inside a root only, content types, ETag/304), ``assets`` (the npm-installed
Admin UI at ``/admin-ui/`` and the Socket.IO client bundle at ``/socket.io/socket.io.min.js``),
``login`` (dashboard cookie, CSRF and same-origin checks), ``dashboard`` (``/dashboard/`` and its
``/dashboard`` Socket.IO namespace). ``mount_web`` wires them all on a router. Must not know about the
``/admin`` Socket.IO namespace of the Admin UI (``server.adminui``) nor the CLI.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from server.http import Router
from server.socketio import Server
from server.web.assets import AdminUiFiles, ClientBundle, find_web_modules
from server.web.dashboard import AdminHandler, Dashboard


@dataclass(slots=True)
class Web:
    dashboard: Dashboard
    admin_ui: AdminUiFiles
    client: ClientBundle


def mount_web(
    router: Router,
    *,
    sio: Server,
    admin: AdminHandler,
    token: str,
    connections: Callable[[], int],
    counters: Callable[[], Mapping[str, int]],
    state_counts: Callable[[], Mapping[str, int]],
) -> Web:
    """Mount ``/dashboard/``, ``/admin-ui/`` and the client bundle; run ``web.dashboard.run`` in a nursery."""
    modules = find_web_modules()
    dashboard = Dashboard(token=token, admin=admin, connections=connections, counters=counters,
                          state_counts=state_counts)
    dashboard.mount(router)
    dashboard.attach(sio)
    admin_ui = AdminUiFiles(modules)
    admin_ui.mount(router)
    client = ClientBundle(modules)
    client.mount(router)
    return Web(dashboard, admin_ui, client)


__all__ = ["Web", "mount_web"]
