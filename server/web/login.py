"""Dashboard logins: the admin token exchanged for a cookie, CSRF tokens, same-origin checks.

Owns: ``Logins`` (a bounded table of logged-in browsers: random login id -> CSRF token and expiry; the
admin token itself never leaves the server after the login POST), the cookie (``HttpOnly;
SameSite=Strict; Path=/``, ``Secure`` behind HTTPS), ``same_origin`` (the ``Origin`` header of a
state-changing request must be this server's own origin) and constant-time comparisons. Knows nothing of
routes, of what the dashboard shows or of Socket.IO.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie

COOKIE_NAME = "supervisor_dashboard"
DEFAULT_TTL = 12 * 3600.0
MAX_LOGINS = 256


@dataclass(slots=True)
class Login:
    login_id: str
    csrf: str
    expires_at: float


class Logins:
    """At most ``max_logins`` live logins (the oldest goes first), each valid for ``ttl`` seconds."""

    def __init__(
        self,
        token: str,
        *,
        ttl: float = DEFAULT_TTL,
        max_logins: int = MAX_LOGINS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not token:
            raise ValueError("the dashboard needs a non-empty admin token")
        self._token = token.encode()
        self._ttl = ttl
        self._max = max_logins
        self._clock = clock
        self._logins: OrderedDict[str, Login] = OrderedDict()

    def __len__(self) -> int:
        return len(self._logins)

    def token_matches(self, given: str) -> bool:
        return hmac.compare_digest(given.encode(), self._token)

    def create(self) -> Login:
        while len(self._logins) >= self._max:
            self._logins.popitem(last=False)
        login = Login(secrets.token_urlsafe(32), secrets.token_urlsafe(24), self._clock() + self._ttl)
        self._logins[login.login_id] = login
        return login

    def get(self, login_id: str | None) -> Login | None:
        if not login_id:
            return None
        login = self._logins.get(login_id)
        if login is None:
            return None
        if login.expires_at <= self._clock():
            del self._logins[login_id]
            return None
        return login

    def from_cookie_header(self, cookie_header: str | None) -> Login | None:
        return self.get(cookie_value(cookie_header, COOKIE_NAME))

    def drop(self, login_id: str) -> None:
        self._logins.pop(login_id, None)


def cookie_value(cookie_header: str | None, name: str) -> str | None:
    if not cookie_header:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(cookie_header)
    except CookieError:
        return None
    morsel = jar.get(name)
    return morsel.value if morsel is not None else None


def set_cookie(login: Login, *, secure: bool, max_age: int = int(DEFAULT_TTL)) -> str:
    flags = f"; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict"
    return f"{COOKIE_NAME}={login.login_id}{flags}{'; Secure' if secure else ''}"


def clear_cookie(*, secure: bool) -> str:
    return f"{COOKIE_NAME}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict{'; Secure' if secure else ''}"


def is_secure(headers: Mapping[str, str]) -> bool:
    """Behind a TLS-terminating proxy that says so (``X-Forwarded-Proto: https``)."""
    return headers.get("x-forwarded-proto", "").split(",")[0].strip().lower() == "https"


def own_origin(headers: Mapping[str, str]) -> str | None:
    host = headers.get("host")
    if not host:
        return None
    return f"{'https' if is_secure(headers) else 'http'}://{host}".lower()


def same_origin(headers: Mapping[str, str]) -> bool:
    """True only if the request carries an ``Origin`` equal to this server's origin (the ``Host`` it was
    sent to). A missing Origin is refused: every browser sends it on POST, so its absence means a
    non-browser client, which should use the bearer-token admin API instead."""
    origin = headers.get("origin")
    expected = own_origin(headers)
    if not origin or expected is None or origin == "null":
        return False
    return hmac.compare_digest(origin.strip().lower().encode(), expected.encode())


def csrf_matches(login: Login, given: str | None) -> bool:
    if not given:
        return False
    return hmac.compare_digest(given.encode(), login.csrf.encode())
