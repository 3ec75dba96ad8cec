"""Redis store URLs: ``redis://``, ``rediss://`` (TLS), a password in the URL or in an environment variable.

Owns: ``RedisURL`` and ``parse_redis_url``. Pure parsing, no I/O, no coredis. It sits beside ``url.py`` (which
still answers "not supported yet" for redis URLs until the cluster integration routes them here).

Forms:
    redis://HOST:PORT/DB                      plain TCP (port 6379 and db 0 by default)
    rediss://HOST:PORT/DB                     TLS
    redis://:PASSWORD@HOST:PORT/DB            password (percent-encoded); redis://USER:PASSWORD@... with ACLs
    redis://HOST/0?password_env=NAME          the password is read from the environment variable NAME
    redis://HOST/0?timeout=2.5                seconds before a Redis call fails with a StoreError
Without a password in the URL, ``SUPERVISOR_REDIS_PASSWORD`` is used when it is set.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlsplit

from actors.stores.base import StoreError

__all__ = ["PASSWORD_ENV", "RedisURL", "RedisURLError", "parse_redis_url"]

PASSWORD_ENV = "SUPERVISOR_REDIS_PASSWORD"


class RedisURLError(StoreError, ValueError):
    """The redis URL is malformed or has an unknown option."""


@dataclass(frozen=True, slots=True)
class RedisURL:
    host: str = "127.0.0.1"
    port: int = 6379
    db: int = 0
    username: str | None = None
    password: str | None = None
    tls: bool = False
    timeout: float = 5.0

    def __repr__(self) -> str:  # never print the password
        scheme = "rediss" if self.tls else "redis"
        auth = ":***@" if self.password else ""
        return f"RedisURL('{scheme}://{auth}{self.host}:{self.port}/{self.db}', timeout={self.timeout})"


def parse_redis_url(url: str, env: Mapping[str, str] | None = None) -> RedisURL:
    environ = os.environ if env is None else env
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise RedisURLError(f"malformed redis URL: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme not in ("redis", "rediss"):
        raise RedisURLError(f"not a redis URL (expected redis:// or rediss://): scheme {scheme!r}")
    host = parts.hostname or "127.0.0.1"
    path = parts.path.strip("/")
    if path and not path.isdigit():
        raise RedisURLError(f"redis URL: the path must be a database number, not {path!r}")
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    timeout = 5.0
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == "password_env":
            if value not in environ:
                raise RedisURLError(f"redis URL: environment variable {value!r} (password_env) is not set")
            password = environ[value]
        elif key == "timeout":
            try:
                timeout = float(value)
            except ValueError:
                timeout = -1.0
            if not timeout > 0:
                raise RedisURLError(f"redis URL: timeout must be a positive number of seconds, not {value!r}")
        else:
            raise RedisURLError(f"redis URL: unknown option {key!r} (known: password_env, timeout)")
    if password is None and environ.get(PASSWORD_ENV):
        password = environ[PASSWORD_ENV]
    return RedisURL(
        host=host,
        port=port if port is not None else 6379,
        db=int(path) if path else 0,
        username=username or None,
        password=password or None,
        tls=scheme == "rediss",
        timeout=timeout,
    )
