"""The npm-installed browser files: the Socket.IO Admin UI at ``/admin-ui/`` and the client bundle.

Owns: finding ``web/node_modules`` (``SUPERVISOR_WEB_MODULES`` or next to the source tree, where
``scripts/_web_assets.sh`` installs it), ``AdminUiFiles`` (``@socket.io/admin-ui``'s ``ui/dist`` with
``@mdi/font`` under ``/admin-ui/mdi/``; ``index.html`` rewritten so nothing is fetched from another
origin -- the Google Fonts link dropped, the CDN icon stylesheet pointed at our copy -- and the login
form's server URL preset to the page's origin; ``/admin-ui`` redirects to ``/admin-ui/``) and
``ClientBundle`` (``/socket.io/socket.io.js`` and friends as Node's ``serveClient`` answers them: ETag is
the client's version, 304 on a match). Without node_modules both answer 404 with the install command.
Knows nothing of the ``/admin`` Socket.IO namespace (``server.adminui``) nor of the dashboard.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from server.http import Request, Response, Router
from server.web.static import StaticRoot, bytes_response, not_modified

ADMIN_UI_PREFIX = "/admin-ui/"
MDI_DIR = "mdi/"
CLIENT_FILES = ("socket.io.js", "socket.io.min.js", "socket.io.esm.min.js", "socket.io.msgpack.min.js")
MODULES_ENV = "SUPERVISOR_WEB_MODULES"
INSTALL_HINT = b"run scripts/serve or scripts/test once (they run `npm ci --omit=peer` in web/)\n"

_PRESET = (
    "<script>if(!localStorage.getItem(\"server_url\"))"
    "localStorage.setItem(\"server_url\",location.origin)</script>"
)
_REMOTE_CSS = re.compile(r'<link[^>]+href="https?://[^"]*"[^>]*>')
_MDI_CDN = re.compile(r'href="https?://cdn\.jsdelivr\.net/npm/@mdi/font@[^/"]*/css/([^"]+)"')


def find_web_modules() -> Path | None:
    """The node_modules holding the UI and client packages, or None if not installed."""
    configured = os.environ.get(MODULES_ENV)
    candidates = [Path(configured)] if configured else []
    candidates.append(Path(__file__).resolve().parents[2] / "web" / "node_modules")
    for candidate in candidates:
        if (candidate / "@socket.io" / "admin-ui").is_dir() or (candidate / "socket.io-client").is_dir():
            return candidate
    return None


def rewrite_index(html: str) -> str:
    """The Admin UI's index.html with no cross-origin request and the server URL preset."""
    html = _MDI_CDN.sub(lambda m: f'href="{MDI_DIR}css/{m.group(1)}"', html)
    html = _REMOTE_CSS.sub("", html)  # Google Fonts (Roboto): the UI falls back to the system font
    return html.replace("<head>", "<head>" + _PRESET, 1)


def _not_installed(what: str) -> Response:
    return Response(404, f"{what} is not installed: ".encode() + INSTALL_HINT)


class AdminUiFiles:
    """``files.mount(router)`` serves the Admin UI's static files (no data: that is the ``/admin``
    namespace, behind its own login)."""

    def __init__(self, modules: Path | None) -> None:
        self._ui = StaticRoot(modules / "@socket.io" / "admin-ui" / "ui" / "dist") if modules else None
        self._mdi = StaticRoot(modules / "@mdi" / "font") if modules else None
        self._index: bytes | None = None

    @property
    def available(self) -> bool:
        return self._ui is not None and self._ui.exists()

    def mount(self, router: Router) -> None:
        router.route(ADMIN_UI_PREFIX.rstrip("/"), self.handle)
        router.mount(ADMIN_UI_PREFIX, self.handle)

    async def handle(self, request: Request) -> Response:
        if request.path == ADMIN_UI_PREFIX.rstrip("/"):
            return Response(308, b"", [("Location", ADMIN_UI_PREFIX)])
        if not self.available or self._ui is None or self._mdi is None:
            return _not_installed("@socket.io/admin-ui")
        relative = request.path[len(ADMIN_UI_PREFIX):]
        if relative in ("", "index.html"):
            return await self._serve_index(request)
        if relative.startswith(MDI_DIR):
            sub = relative[len(MDI_DIR):]
            if not (sub.startswith("css/") or sub.startswith("fonts/")):
                return Response(404, b"Not Found\n")
            return await self._mdi.respond(request, sub, cache_control="public, max-age=3600")
        return await self._ui.respond(request, relative, cache_control="public, max-age=3600")

    async def _serve_index(self, request: Request) -> Response:
        if self._index is None:
            assert self._ui is not None
            found = await self._ui.read("index.html")
            if found is None:
                return _not_installed("@socket.io/admin-ui")
            self._index = rewrite_index(found.body.decode("utf-8")).encode("utf-8")
        return bytes_response(request, self._index, "text/html; charset=utf-8", cache_control="no-cache")


class ClientBundle:
    """The socket.io-client ``dist`` files under the Socket.IO path, as exact routes (they win over the
    Engine.IO mount on the same prefix)."""

    def __init__(self, modules: Path | None, path: str = "/socket.io") -> None:
        self._root = StaticRoot(modules / "socket.io-client" / "dist") if modules else None
        self._path = path.rstrip("/")
        self._version: str | None = None
        if modules is not None:
            try:
                meta = json.loads((modules / "socket.io-client" / "package.json").read_text("utf-8"))
                self._version = str(meta["version"])
            except (OSError, ValueError, KeyError):
                self._version = None

    def mount(self, router: Router) -> None:
        for name in CLIENT_FILES:
            router.route(f"{self._path}/{name}", self.handle)
            router.route(f"{self._path}/{name}.map", self.handle)

    async def handle(self, request: Request) -> Response:
        if request.method not in ("GET", "HEAD"):
            return Response(405, b"Method Not Allowed\n", [("Allow", "GET, HEAD")])
        if self._root is None or self._version is None:
            return _not_installed("socket.io-client")
        name = request.path.rsplit("/", 1)[-1]
        etag = f'"{self._version}"'
        headers = [("ETag", etag), ("Cache-Control", "public, max-age=0")]
        if not_modified(request, etag):
            return Response(304, b"", headers)
        found = await self._root.read(name)
        if found is None:
            return Response(404, b"Not Found\n")
        ctype = "application/json" if name.endswith(".map") else "application/javascript; charset=utf-8"
        return bytes_response(request, found.body, ctype, etag=etag, cache_control="public, max-age=0")
