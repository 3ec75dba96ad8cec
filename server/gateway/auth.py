"""Client authentication for the session gateway: credentials in, user id out.

Owns: the ``Authenticator`` protocol, ``ApiKeyAuthenticator`` (the built-in one), ``OpenAuthenticator``
(no authentication) and loading a custom validator by import path. Knows nothing of Socket.IO packets or
actors: the gateway hands it the token and the connect environ and gets a user id or ``AuthError``.
"""

from __future__ import annotations

import hmac
import importlib
import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

ANONYMOUS_USER = "anonymous"


class AuthError(Exception):
    """The credentials were missing or wrong."""


class Authenticator(Protocol):
    async def authenticate(self, token: str | None, environ: Mapping[str, Any]) -> str:
        """Return the user id the credentials belong to, or raise ``AuthError``."""
        ...


class OpenAuthenticator:
    """No authentication: every client is the same anonymous user."""

    async def authenticate(self, token: str | None, environ: Mapping[str, Any]) -> str:
        return ANONYMOUS_USER


class ApiKeyAuthenticator:
    """Static API keys, each mapped to a user id. Keys are compared in constant time."""

    def __init__(self, keys: Mapping[str, str]) -> None:
        if not keys:
            raise ValueError("ApiKeyAuthenticator needs at least one key")
        self._keys = [(key.encode(), user) for key, user in keys.items()]

    async def authenticate(self, token: str | None, environ: Mapping[str, Any]) -> str:
        if not token:
            raise AuthError("missing credentials")
        given = token.encode()
        user: str | None = None
        for key, owner in self._keys:  # no early exit: the time taken does not depend on which key matched
            if hmac.compare_digest(key, given):
                user = owner
        if user is None:
            raise AuthError("invalid credentials")
        return user


Validator = Callable[[str | None, Mapping[str, Any]], "str | Awaitable[str | None] | None"]


class HookAuthenticator:
    """Wraps a user function ``(token, environ) -> user id | None`` (sync or async); None means refused."""

    def __init__(self, validator: Validator) -> None:
        self._validator = validator

    async def authenticate(self, token: str | None, environ: Mapping[str, Any]) -> str:
        result = self._validator(token, environ)
        if inspect.isawaitable(result):
            result = await result
        if not result:
            raise AuthError("invalid credentials")
        return str(result)


def load_validator(path: str) -> Validator:
    """Import ``module:callable``."""
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise ValueError(f"auth hook must look like 'module:callable', got {path!r}")
    target = getattr(importlib.import_module(module_name), attr)
    if not callable(target):
        raise TypeError(f"auth hook {path!r} is not callable")
    return target


def build_authenticator(api_keys: Mapping[str, str], hook: str | None) -> Authenticator:
    if hook:
        return HookAuthenticator(load_validator(hook))
    if api_keys:
        return ApiKeyAuthenticator(api_keys)
    return OpenAuthenticator()
