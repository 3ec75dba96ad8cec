"""Dashboard logins: bounded, expiring, constant-time checks, same-origin rules."""

from __future__ import annotations

from server.web.login import (
    COOKIE_NAME,
    Logins,
    cookie_value,
    csrf_matches,
    same_origin,
    set_cookie,
)


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_logins_expire_and_the_oldest_goes_first_when_full() -> None:
    clock = Clock()
    logins = Logins("tok", ttl=10, max_logins=2, clock=clock)
    a, b = logins.create(), logins.create()
    c = logins.create()
    assert logins.get(a.login_id) is None  # evicted: the table is bounded
    assert logins.get(b.login_id) is b and logins.get(c.login_id) is c
    clock.now += 10
    assert logins.get(b.login_id) is None and len(logins) == 1


def test_token_and_csrf_comparisons() -> None:
    logins = Logins("tok")
    assert logins.token_matches("tok") and not logins.token_matches("tok2") and not logins.token_matches("")
    login = logins.create()
    assert csrf_matches(login, login.csrf)
    assert not csrf_matches(login, None) and not csrf_matches(login, "") and not csrf_matches(login, "x")


def test_the_cookie_round_trip_and_attributes() -> None:
    logins = Logins("tok")
    login = logins.create()
    header = set_cookie(login, secure=True)
    assert "HttpOnly" in header and "SameSite=Strict" in header and "Secure" in header
    name_value = header.split(";")[0]
    assert logins.from_cookie_header(f"other=1; {name_value}") is login
    assert cookie_value('broken="', COOKIE_NAME) is None
    assert logins.from_cookie_header(None) is None


def test_same_origin() -> None:
    assert same_origin({"host": "a:1", "origin": "http://a:1"})
    assert same_origin({"host": "a:1", "origin": "https://a:1", "x-forwarded-proto": "https"})
    assert not same_origin({"host": "a:1", "origin": "https://a:1"})
    assert not same_origin({"host": "a:1", "origin": "http://b:1"})
    assert not same_origin({"host": "a:1"})
    assert not same_origin({"host": "a:1", "origin": "null"})
    assert not same_origin({"origin": "http://a:1"})
