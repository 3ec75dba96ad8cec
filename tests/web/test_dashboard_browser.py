"""The sessions dashboard in a real Chromium, with sessions made by the official JS client in other tabs."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from server.app import SupervisorApp
from server.cli.http_client import request
from server.web.login import COOKIE_NAME
from tests.web.browser import artifacts_dir, chromium_path, open_js_client
from tests.web.conftest import TOKEN
from tests.web.test_assets import needs_modules

pytestmark = [pytest.mark.slow, needs_modules]
WAIT_MS = 15_000


def _admin_state(app: SupervisorApp, session_id: str) -> str:
    async def fetch() -> str:
        response = await request("GET", app.url, f"/admin/sessions/{session_id}",
                                 headers=[("Authorization", f"Bearer {TOKEN}")])
        state: str = response.json()["state"]
        return state

    return trio.from_thread.run(fetch)


def _browse(app: SupervisorApp, executable: str) -> dict[str, Any]:
    from playwright.sync_api import expect, sync_playwright

    base = app.url
    shots = artifacts_dir()
    seen_urls: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable)
        context = browser.new_context(viewport={"width": 1280, "height": 860})
        context.on("request", lambda r: seen_urls.append(r.url))
        alpha_client = open_js_client(context, base, "alpha-session", "hello from alpha")

        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.goto(base + "/dashboard/")
        expect(page.locator("#login-form")).to_be_visible()

        # A wrong token: an error, and no data on screen.
        page.fill("#token", "not-the-token")
        page.click("#login-form button[type=submit]")
        expect(page.locator("#login-error")).to_have_text("Wrong admin token.")
        expect(page.locator("#app-view")).to_be_hidden()
        assert page.locator("#sessions tbody tr").count() == 0
        page.screenshot(path=str(shots / "dashboard-wrong-token.png"))

        page.fill("#token", TOKEN)
        page.click("#login-form button[type=submit]")
        alpha = page.locator('#sessions tr[data-session="alpha-session"]')
        expect(alpha).to_be_visible()
        expect(alpha.locator(".state")).to_have_text("active")
        expect(alpha.locator("td.connections")).to_have_text("1")
        expect(page.locator("#sessions thead")).to_contain_text("Connections")
        expect(page.locator("#live")).to_have_text("live")

        # A new session appears without a reload (the live tick refreshes the page of the list).
        navigations: list[str] = []
        page.on("framenavigated", lambda frame: navigations.append(frame.url))
        open_js_client(context, base, "beta-session", "hello from beta")
        expect(page.locator('#sessions tr[data-session="beta-session"]')).to_be_visible()
        assert navigations == []
        page.wait_for_function("document.getElementById('chart-span').textContent >= '2'")
        page.screenshot(path=str(shots / "dashboard-sessions.png"), full_page=True)

        # The filter by state: only passivated ones (none yet).
        page.select_option("#state-filter", "passivated")
        expect(page.locator("#list-empty")).to_be_visible()
        page.select_option("#state-filter", "")
        expect(alpha).to_be_visible()

        # One session: its connections and its events.
        alpha.locator("a").click()
        expect(page.locator("#s-id")).to_have_text("alpha-session")
        expect(page.locator("#s-connections tbody tr")).to_have_count(1)
        expect(page.locator("#s-events tbody")).to_contain_text("hello from alpha")
        page.screenshot(path=str(shots / "dashboard-session.png"), full_page=True)

        # Its client goes away (or it would reconnect and rehydrate the session): the page follows.
        alpha_client.close()
        expect(page.locator("#s-connections tbody tr")).to_have_count(0)

        # Passivate, confirmed in the dialog: the state changes on screen and in the admin API.
        page.click("#passivate")
        expect(page.locator("#confirm")).to_be_visible()
        page.click("#confirm-ok")
        expect(page.locator("#s-state")).to_have_text("passivated")
        admin_state = _admin_state(app, "alpha-session")
        page.screenshot(path=str(shots / "dashboard-passivated.png"), full_page=True)

        # After a reload the login holds (cookie), and the token is nowhere the page can read or link.
        page.reload()
        expect(page.locator("#s-state")).to_have_text("passivated")

        # Back to the list: one session passivated, the other still active, each in words.
        page.get_by_role("link", name="All sessions").click()
        expect(alpha.locator(".state")).to_have_text("passivated")
        expect(page.locator('#sessions tr[data-session="beta-session"] .state')).to_have_text("active")
        page.screenshot(path=str(shots / "dashboard-states.png"), full_page=True)
        storage = page.evaluate("JSON.stringify([localStorage, sessionStorage, document.cookie])")
        result = {
            "admin_state": admin_state,
            "urls": seen_urls,
            "storage": storage,
            "cookies": context.cookies(),
            "html": page.content(),
        }
        browser.close()
    return result


async def test_dashboard_in_chromium(app: SupervisorApp) -> None:
    executable = chromium_path()
    result = await trio.to_thread.run_sync(_browse, app, executable)
    assert result["admin_state"] == "passivated"
    assert all(TOKEN not in url for url in result["urls"])
    assert all(url.startswith(app.url) for url in result["urls"]), result["urls"]
    assert TOKEN not in result["storage"]
    assert COOKIE_NAME not in result["storage"]  # HttpOnly: scripts cannot read it
    (cookie,) = [c for c in result["cookies"] if c["name"] == COOKIE_NAME]
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert cookie["value"] != TOKEN
    assert TOKEN not in result["html"]
    assert (artifacts_dir() / "dashboard-sessions.png").stat().st_size > 10_000
