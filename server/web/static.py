"""Static files for the HTTP layer: paths resolved inside one root only, content types, ETag and 304.

Owns: ``StaticRoot`` (a directory whose files are served; a request path is refused unless every
segment is a plain name and the resolved file, symlinks followed, stays under the root), ``content_type``
(``mimetypes`` plus the web types it lacks or gets wrong), ``etag_for``/``not_modified`` (strong ETags,
``If-None-Match`` with strong or weak matches, ``*``) and ``bytes_response``. Files are read with
``trio.to_thread`` (never on the event loop). Knows nothing of which files are served where (see
``server.web.assets`` and ``server.web.dashboard``) nor of sockets.
"""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import trio

from server.http import Request, Response

MAX_FILE_BYTES = 32 * 1024 * 1024  # nothing we serve comes close; refuse to read anything bigger

_TYPES: dict[str, str] = {
    ".html": "text/html; charset=utf-8",
    ".js": "application/javascript; charset=utf-8",
    ".mjs": "application/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
    ".woff": "font/woff",
    ".ttf": "font/ttf",
    ".eot": "application/vnd.ms-fontobject",
    ".txt": "text/plain; charset=utf-8",
}


def content_type(name: str) -> str:
    suffix = PurePosixPath(name).suffix.lower()
    known = _TYPES.get(suffix)
    if known is not None:
        return known
    guessed, _ = mimetypes.guess_type(name)
    return guessed or "application/octet-stream"


def etag_for(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'


def not_modified(request: Request, etag: str) -> bool:
    """True if ``If-None-Match`` matches ``etag`` (weak comparison, as RFC 9110 asks for GET/HEAD)."""
    header = request.headers.get("if-none-match")
    if not header:
        return False
    wanted = etag.removeprefix("W/")
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == wanted:
            return True
    return False


def bytes_response(
    request: Request,
    body: bytes,
    ctype: str,
    *,
    etag: str | None = None,
    cache_control: str = "no-cache",
    extra_headers: list[tuple[str, str]] | None = None,
) -> Response:
    """200 with ``body`` (empty for HEAD), or 304 if the client has it; 405 for other methods."""
    if request.method not in ("GET", "HEAD"):
        return Response(405, b"Method Not Allowed\n", [("Allow", "GET, HEAD")])
    etag = etag or etag_for(body)
    headers = [("ETag", etag), ("Cache-Control", cache_control), ("X-Content-Type-Options", "nosniff")]
    headers += extra_headers or []
    if not_modified(request, etag):
        return Response(304, b"", headers, ctype)
    return Response(200, b"" if request.method == "HEAD" else body, headers, ctype)


def safe_relative(path: str) -> PurePosixPath | None:
    """``path`` (already percent-decoded, relative to a root) as clean segments, or None if any segment
    could climb or hide: ``..``, ``.``, empty, backslashes, NUL, drive letters, dotfiles."""
    if "\x00" in path or "\\" in path:
        return None
    parts = [p for p in path.split("/") if p != ""]
    for part in parts:
        if part in (".", "..") or part.startswith(".") or ":" in part:
            return None
    return PurePosixPath(*parts) if parts else PurePosixPath()


@dataclass(frozen=True, slots=True)
class StaticFile:
    body: bytes
    content_type: str
    etag: str


class StaticRoot:
    """A directory of files: ``await root.read("css/app.css")`` is the file or None (missing, refused)."""

    __slots__ = ("_root",)

    def __init__(self, root: Path) -> None:
        self._root = root.resolve()

    @property
    def path(self) -> Path:
        return self._root

    def exists(self) -> bool:
        return self._root.is_dir()

    def resolve(self, relative: str) -> Path | None:
        """The file for ``relative`` if it is a regular file inside the root (after symlinks), else None."""
        clean = safe_relative(relative)
        if clean is None or not clean.parts:
            return None
        candidate = (self._root / clean).resolve()
        if not candidate.is_relative_to(self._root) or not candidate.is_file():
            return None
        return candidate

    async def read(self, relative: str) -> StaticFile | None:
        def load() -> StaticFile | None:
            target = self.resolve(relative)
            if target is None:
                return None
            try:
                if target.stat().st_size > MAX_FILE_BYTES:
                    return None
                body = target.read_bytes()
            except OSError:
                return None
            return StaticFile(body, content_type(target.name), etag_for(body))

        return await trio.to_thread.run_sync(load)

    async def respond(self, request: Request, relative: str, *, cache_control: str = "no-cache") -> Response:
        """The file as a response, or 404 (also for refused paths: nothing says whether they exist)."""
        if request.method not in ("GET", "HEAD"):
            return Response(405, b"Method Not Allowed\n", [("Allow", "GET, HEAD")])
        found = await self.read(relative)
        if found is None:
            return Response(404, b"Not Found\n")
        return bytes_response(request, found.body, found.content_type, etag=found.etag,
                              cache_control=cache_control)
