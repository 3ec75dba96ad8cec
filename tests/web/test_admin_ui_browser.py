"""The official Socket.IO Admin UI, served by us, in a real Chromium: offline, logged in through its form."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio

from server.adminui import AdminUiConfig
from server.app import SupervisorApp
from server.config import Config
from tests.web.browser import artifacts_dir, chromium_path, open_js_client
from tests.web.test_assets import needs_modules

pytestmark = [pytest.mark.slow, needs_modules]
TOKEN = "admin-ui-browser-token"
WAIT_MS = 15_000
NO_MOTION = "*, *::before, *::after { transition: none !important; animation: none !important; }"


@pytest.fixture
async def ui_app() -> AsyncIterator[SupervisorApp]:
    server = SupervisorApp(Config().override(
        http={"port": 0}, store={"url": "memory://"}, supervisor={"close_delay": None},
        admin={"token": TOKEN, "ui": AdminUiConfig(enabled=True)},
    ))
    async with trio.open_nursery() as nursery:
        await nursery.start(server.run)
        yield server
        await server.shutdown()


def _browse(app: SupervisorApp, executable: str) -> dict[str, Any]:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=WAIT_MS)  # a loaded machine: the same patience as the page's own waits

    base = app.url
    shots = artifacts_dir()
    foreign: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable)
        context = browser.new_context(viewport={"width": 1280, "height": 800})

        def only_origin(route: Any) -> None:
            if route.request.url.startswith(base):
                route.continue_()
            else:
                foreign.append(route.request.url)
                route.abort()

        context.route("**/*", only_origin)
        client_one = open_js_client(context, base, "ui-one", "hello one")
        client_two = open_js_client(context, base, "ui-two", "hello two")

        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.goto(base + "/admin-ui")  # the redirect adds the slash
        assert page.url.startswith(base + "/admin-ui/")
        expect(page.get_by_label("Server URL")).to_have_value(base)  # preset: only the password to type

        # A wrong password: the login again, with the UI's own message.
        page.get_by_label("Username").fill("admin")
        page.get_by_label("Password").fill("wrong")
        page.get_by_role("button", name="Connect").click()
        expect(page.get_by_text("Invalid credentials")).to_be_visible()
        expect(page.get_by_label("Password")).to_be_visible()

        page.get_by_label("Password").fill(TOKEN)
        page.get_by_role("button", name="Connect").click()
        expect(page.get_by_role("banner").get_by_text("connected", exact=True).first).to_be_visible()
        expect(page.get_by_label("Password")).to_be_hidden()
        page.screenshot(path=str(shots / "admin-ui-dashboard.png"))

        # A reload stays logged in (the session id arrived after the CONNECT ack and was stored).
        page.reload()
        expect(page.get_by_role("banner").get_by_text("connected", exact=True).first).to_be_visible()
        expect(page.get_by_label("Password")).to_be_hidden()

        # A real client acts while the admin watches: the Events page shows what it sent and got.
        client_two.evaluate(
            'window.sock.emitWithAck("oh_user_action", {action: "message", args: {content: "watched"}})')
        page.add_style_tag(content=NO_MOTION)  # screenshots of settled pages, not of a transition
        page.get_by_role("link", name="Events").click()
        expect(page.get_by_text("oh_user_action").first).to_be_visible()
        sent = page.locator("main tbody tr", has_text="oh_event").first
        sent.locator("button").click()  # unfold it: the event's arguments, as the client got them
        expect(page.get_by_text("echo: watched").first).to_be_visible()
        page.screenshot(path=str(shots / "admin-ui-events.png"))

        # The Sockets page lists the real clients.
        page.get_by_role("link", name="Sockets").click()
        expect(page.locator("main tbody tr")).to_have_count(2)
        page.screenshot(path=str(shots / "admin-ui-sockets.png"))

        # Disconnect the first client's socket from the UI: the client sees it.
        sid_one = client_one.evaluate("window.sock.id")
        page.locator("main tbody tr", has_text=sid_one).click()
        expect(page.get_by_text('"sessionId": "ui-one"')).to_be_visible()
        page.screenshot(path=str(shots / "admin-ui-socket.png"))
        page.locator("main button:has(i.mdi-logout)").nth(1).click()  # the socket's "disconnect"
        client_one.wait_for_function("window.disconnected !== undefined", timeout=WAIT_MS)
        reason = client_one.evaluate("window.disconnected")
        browser.close()
    return {"foreign": foreign, "reason": reason}


async def test_admin_ui_in_chromium(ui_app: SupervisorApp) -> None:
    executable = chromium_path()
    result = await trio.to_thread.run_sync(_browse, ui_app, executable)
    assert result["foreign"] == []  # no request left the origin (no Google Fonts, no CDN)
    assert result["reason"] == "io server disconnect"
    assert (artifacts_dir() / "admin-ui-sockets.png").stat().st_size > 10_000
