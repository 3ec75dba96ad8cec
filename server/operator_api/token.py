"""The admin token: how it is checked, generated and kept on disk.

Owns: ``check_bearer`` (constant-time comparison of an ``Authorization: Bearer`` header),
``ensure_token_file`` (``serve`` without ``--admin-token``: reuse or generate ``<data_dir>/admin-token``,
mode 0600) and ``read_token_file`` (the CLI's default token). Knows nothing of HTTP routing, the CLI's
options or the supervisor.
"""

from __future__ import annotations

import hmac
import os
import secrets
import stat
from pathlib import Path
from typing import Any

TOKEN_FILE_NAME = "admin-token"
_MAX_TOKEN_BYTES = 4096


def token_path(data_dir: Path) -> Path:
    return data_dir / TOKEN_FILE_NAME


def generate_token() -> str:
    return secrets.token_urlsafe(32)


def check_bearer(authorization: str | None, token: str) -> bool:
    """True if ``authorization`` is ``Bearer <token>`` (scheme case-insensitive); constant-time compare."""
    if not authorization or not token:
        return False
    scheme, _, credentials = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(credentials.strip().encode(), token.encode())


def read_token_file(path: Path) -> str | None:
    """The token stored in ``path``, or None if the file is missing, empty or unreadable."""
    try:
        with path.open("rb") as f:
            raw = f.read(_MAX_TOKEN_BYTES)
    except OSError:
        return None
    token = raw.decode("utf-8", "replace").strip()
    return token or None


def ensure_token_file(data_dir: Path) -> tuple[str, Path]:
    """Reuse the token in ``<data_dir>/admin-token`` or write a new one there (mode 0600, atomically).

    An existing file readable by group or others is tightened to 0600. Returns (token, path).
    """
    path = token_path(data_dir)
    existing = read_token_file(path)
    if existing is not None:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            os.chmod(path, 0o600)
            _log().warning("admin_token.permissions_tightened", path=str(path), mode=oct(mode))
        return existing, path
    data_dir.mkdir(parents=True, exist_ok=True)
    token = generate_token()
    tmp = path.with_name(f".{TOKEN_FILE_NAME}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # O_CREAT's mode is filtered by the umask; make it exact
        os.write(fd, (token + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    _log().info("admin_token.generated", path=str(path))
    return token, path


def _log() -> Any:
    # structlog is imported on use: the CLI reads the token file and must start fast.
    import structlog

    return structlog.get_logger(__name__)
