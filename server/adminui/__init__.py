"""The official Socket.IO Admin UI's server side: the ``/admin`` namespace and what it reports.

Modules: ``observer`` (``AdminObserver``: the instrumentation hooks turned into the UI's sockets table,
stats and events), ``config`` (``AdminUiConfig``, the ``[admin.ui]`` table), ``namespace``
(``AdminNamespace``: login, commands, ``server_stats``).
The UI's static files are served by ``server.web.assets``. Must not know about HTTP routing, the CLI or
the supervisor (the app passes a ``data_for`` callable for each socket's ``data``).
"""

from server.adminui.config import AdminUiConfig
from server.adminui.namespace import AdminNamespace, features
from server.adminui.observer import AdminObserver

__all__ = ["AdminNamespace", "AdminObserver", "AdminUiConfig", "features"]
