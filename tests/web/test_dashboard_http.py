"""The dashboard's login, cookie, CSRF and same-origin rules, and its data paths, over real HTTP."""

from __future__ import annotations

import json
from typing import Any

import pytest

from server.app import SupervisorApp
from server.cli.http_client import HttpResponse, request
from server.client import open_client
from server.web.login import COOKIE_NAME
from tests.web.conftest import TOKEN

DATA_PATHS = [
    ("GET", "/dashboard/api/me"), ("GET", "/dashboard/api/series"), ("GET", "/dashboard/api/status"),
    ("GET", "/dashboard/api/sessions"), ("GET", "/dashboard/api/sessions/s1"),
    ("GET", "/dashboard/api/sessions/s1/events"), ("POST", "/dashboard/api/sessions/s1/passivate"),
    ("POST", "/dashboard/api/sessions/s1/kill"), ("POST", "/dashboard/api/logout"),
]


def origin(app: SupervisorApp) -> str:
    return app.url


async def login(app: SupervisorApp, token: str = TOKEN, *, from_origin: str | None = None) -> HttpResponse:
    return await request(
        "POST", app.url, "/dashboard/api/login",
        headers=[("Content-Type", "application/json"), ("Origin", from_origin or origin(app))],
        body=json.dumps({"token": token}).encode(),
    )


async def logged_in(app: SupervisorApp) -> tuple[str, str]:
    response = await login(app)
    assert response.status == 200
    cookie = response.headers["set-cookie"].split(";")[0]
    return cookie, response.json()["csrf"]


async def test_the_page_loads_without_credentials_and_shows_no_data(app: SupervisorApp) -> None:
    page = await request("GET", app.url, "/dashboard/")
    assert page.status == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert b'id="login-form"' in page.body
    script = await request("GET", app.url, "/dashboard/app.js")
    assert script.headers["content-type"] == "application/javascript; charset=utf-8"
    redirect = await request("GET", app.url, "/dashboard")
    assert (redirect.status, redirect.headers["location"]) == (308, "/dashboard/")


@pytest.mark.parametrize(("method", "path"), DATA_PATHS)
@pytest.mark.parametrize("cookie", [None, f"{COOKIE_NAME}=forged", f"{COOKIE_NAME}={TOKEN}"])
async def test_every_data_path_refuses_without_a_login(
    app: SupervisorApp, method: str, path: str, cookie: str | None
) -> None:
    headers = [("Origin", origin(app))] + ([("Cookie", cookie)] if cookie else [])
    # Even the admin token as a bearer header does not open the dashboard's paths: they need the cookie.
    headers.append(("Authorization", f"Bearer {TOKEN}"))
    response = await request(method, app.url, path, headers=headers)
    assert response.status == 401
    assert response.json()["error"]["code"] == "unauthorized"
    assert b"session_id" not in response.body


async def test_wrong_token_is_refused_and_sets_no_cookie(app: SupervisorApp) -> None:
    response = await login(app, "wrong-token")
    assert response.status == 401
    assert "set-cookie" not in response.headers
    assert len(app.web.dashboard.logins) == 0


async def test_login_sets_an_httponly_strict_cookie_that_is_not_the_token(app: SupervisorApp) -> None:
    response = await login(app)
    assert response.status == 200
    cookie = response.headers["set-cookie"]
    attributes = [a.strip().lower() for a in cookie.split(";")]
    assert "httponly" in attributes
    assert "samesite=strict" in attributes
    assert "path=/" in attributes
    assert TOKEN not in cookie
    assert TOKEN not in response.body.decode()
    assert response.json()["csrf"]


@pytest.mark.parametrize("bad_origin", ["http://evil.example", "null", "http://127.0.0.1:1"])
async def test_login_from_another_origin_is_refused(app: SupervisorApp, bad_origin: str) -> None:
    response = await login(app, from_origin=bad_origin)
    assert response.status == 403
    assert "set-cookie" not in response.headers


async def test_login_needs_json(app: SupervisorApp) -> None:
    response = await request("POST", app.url, "/dashboard/api/login",
                             headers=[("Origin", origin(app)), ("Content-Type", "text/plain")],
                             body=json.dumps({"token": TOKEN}).encode())
    assert response.status == 415


async def test_logged_in_reads_the_admin_api_through_the_cookie(app: SupervisorApp) -> None:
    cookie, csrf = await logged_in(app)
    async with open_client(app.url, query={"conversation_id": "s1"}, reconnect=False) as client:
        await client.call("oh_user_action", {"action": "message", "args": {"content": "hi"}})
        listing = await request("GET", app.url, "/dashboard/api/sessions", query={"limit": 10},
                                headers=[("Cookie", cookie)])
        assert listing.status == 200
        (row,) = listing.json()["sessions"]
        assert (row["session_id"], row["state"], row["connections"]) == ("s1", "active", 1)
        events = await request("GET", app.url, "/dashboard/api/sessions/s1/events",
                               headers=[("Cookie", cookie)])
        assert events.json()["events"]
        me = await request("GET", app.url, "/dashboard/api/me", headers=[("Cookie", cookie)])
        assert me.json()["csrf"] == csrf
        assert listing.headers["cache-control"] == "no-store"


async def test_cross_origin_or_csrf_less_posts_are_refused(app: SupervisorApp) -> None:
    cookie, csrf = await logged_in(app)
    async with open_client(app.url, query={"conversation_id": "s1"}, reconnect=False) as client:
        await client.call("oh_user_action", {"action": "message", "args": {"content": "hi"}})
        path = "/dashboard/api/sessions/s1/passivate"
        for headers in (
            [("Cookie", cookie), ("Origin", "http://evil.example"), ("X-CSRF-Token", csrf)],
            [("Cookie", cookie), ("X-CSRF-Token", csrf)],  # no Origin at all
            [("Cookie", cookie), ("Origin", origin(app))],  # no CSRF token
            [("Cookie", cookie), ("Origin", origin(app)), ("X-CSRF-Token", csrf + "x")],
        ):
            response = await request("POST", app.url, path, headers=headers)
            assert response.status == 403, headers
        assert app.supervisor.info("s1") is not None
        assert app.supervisor.info("s1").state == "active"  # type: ignore[union-attr]
        ok = await request("POST", app.url, path,
                           headers=[("Cookie", cookie), ("Origin", origin(app)), ("X-CSRF-Token", csrf)])
        assert ok.status == 200
        assert ok.json()["state"] in ("passivating", "passivated")


async def test_only_passivate_and_kill_are_posted_and_only_known_paths_forwarded(app: SupervisorApp) -> None:
    cookie, csrf = await logged_in(app)
    headers = [("Cookie", cookie), ("Origin", origin(app)), ("X-CSRF-Token", csrf)]
    assert (await request("POST", app.url, "/dashboard/api/sessions", headers=headers)).status == 405
    assert (await request("GET", app.url, "/dashboard/api/metrics", headers=headers)).status == 404


async def test_logout_forgets_the_login(app: SupervisorApp) -> None:
    cookie, csrf = await logged_in(app)
    out = await request("POST", app.url, "/dashboard/api/logout",
                        headers=[("Cookie", cookie), ("Origin", origin(app)), ("X-CSRF-Token", csrf)])
    assert out.status == 200
    assert "max-age=0" in out.headers["set-cookie"].lower()
    after = await request("GET", app.url, "/dashboard/api/status", headers=[("Cookie", cookie)])
    assert after.status == 401


async def _namespace_connect(app: SupervisorApp, headers: list[tuple[str, str]]) -> str:
    """Engine.IO polling by hand: open, CONNECT to /dashboard, read the answer."""
    opened = await request("GET", app.url, "/socket.io/", query={"EIO": "4", "transport": "polling"},
                           headers=headers)
    if opened.status != 200:
        return f"refused by Engine.IO: {opened.status}"
    sid = json.loads(opened.body[1:])["sid"]
    query: dict[str, str | int] = {"EIO": "4", "transport": "polling", "sid": sid}
    sent = await request("POST", app.url, "/socket.io/", query=query, headers=headers, body=b"40/dashboard,")
    assert sent.status == 200
    answer = await request("GET", app.url, "/socket.io/", query=query, headers=headers)
    return answer.body.decode()


async def test_the_live_namespace_needs_the_login_cookie_and_this_origin(app: SupervisorApp) -> None:
    refused = await _namespace_connect(app, [("Origin", origin(app))])
    assert refused.startswith('44/dashboard,{"message":"unauthorized"')
    cookie, _ = await logged_in(app)
    cross = await _namespace_connect(app, [("Origin", "http://evil.example"), ("Cookie", cookie)])
    assert not cross.startswith("40/dashboard,")
    accepted = await _namespace_connect(app, [("Origin", origin(app)), ("Cookie", cookie)])
    assert accepted.startswith("40/dashboard,{")


async def test_paging_through_100000_sessions_is_server_side(app: SupervisorApp) -> None:
    for i in range(100_000):
        await app.store.create(f"s{i:06d}", "someone")
    cookie, _ = await logged_in(app)

    async def page(**query: str | int) -> dict[str, Any]:
        response = await request("GET", app.url, "/dashboard/api/sessions", query=query,
                                 headers=[("Cookie", cookie)])
        assert response.status == 200
        body: dict[str, Any] = response.json()
        return body

    first = await page(limit=50)
    assert [s["session_id"] for s in first["sessions"]] == [f"s{i:06d}" for i in range(50)]
    assert first["next_after"] == "s000049"
    second = await page(limit=50, after=first["next_after"])
    assert second["sessions"][0]["session_id"] == "s000050"
    middle = await page(limit=50, after="s054999")
    assert middle["sessions"][0]["session_id"] == "s055000"
    last = await page(limit=50, after="s099949")
    assert [s["session_id"] for s in last["sessions"]][-1] == "s099999"
    assert last["next_after"] is None  # exactly full, and the last: no cursor to an empty page
    assert {s["state"] for s in last["sessions"]} == {"passivated"}
    filtered = await page(limit=50, state="passivated", after="s099989")
    assert len(filtered["sessions"]) == 10


async def test_kill_through_the_dashboard(app: SupervisorApp) -> None:
    cookie, csrf = await logged_in(app)
    async with open_client(app.url, query={"conversation_id": "k1"}, reconnect=False) as client:
        await client.call("oh_user_action", {"action": "message", "args": {"content": "hi"}})
        killed = await request("POST", app.url, "/dashboard/api/sessions/k1/kill",
                               headers=[("Cookie", cookie), ("Origin", origin(app)), ("X-CSRF-Token", csrf)])
        assert killed.status == 200
        assert killed.json()["was_live"] is True
