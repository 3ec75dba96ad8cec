"""Helpers for the browser tests: Debian's chromium driven by Playwright for Python, artifacts on disk.

The server runs in the test's trio loop; the synchronous Playwright code runs in ``trio.to_thread`` and
calls back into the loop with ``trio.from_thread.run`` (never the pytest-playwright ``page`` fixture,
which would block the loop serving the page).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

INSTALL = "apt-get install -y chromium fonts-liberation (scripts/test does it when run as root)"


def chromium_path() -> str:
    """Chromium's path, or skip (fail under CI=true) with the install command."""
    path = shutil.which("chromium") or (
        "/usr/lib/chromium/chromium" if Path("/usr/lib/chromium/chromium").exists() else None
    )
    problem = None
    if path is None:
        problem = f"chromium is not installed: {INSTALL}"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            problem = "playwright is not installed: pip install -e '.[dev]'"
    if problem is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(problem)
        pytest.skip(problem)
    assert path is not None
    return path


def artifacts_dir() -> Path:
    """Where screenshots go: ``$SUPERVISOR_TEST_ARTIFACTS`` or ``results/tmp/browser`` (git-ignored)."""
    configured = os.environ.get("SUPERVISOR_TEST_ARTIFACTS")
    base = Path(configured) if configured else Path(__file__).resolve().parents[2] / "results" / "tmp"
    out = base / "browser"
    out.mkdir(parents=True, exist_ok=True)
    return out


JS_CLIENT = """async ([sessionId, text]) => {
  window.sock = io({query: {conversation_id: sessionId}, transports: ["websocket"]});
  window.events = [];
  window.sock.on("oh_event", (e) => window.events.push(e));
  window.sock.on("disconnect", (reason) => { window.disconnected = reason; });
  await new Promise((resolve, reject) => {
    window.sock.on("connect", resolve);
    window.sock.on("connect_error", reject);
  });
  const ack = await window.sock.emitWithAck("oh_user_action", {action: "message", args: {content: text}});
  return ack;
}"""


def open_js_client(context: Any, base_url: str, session_id: str, text: str) -> Any:
    """A tab running the official socket.io-client (served by our server) joined to ``session_id``."""
    page = context.new_page()
    page.goto(base_url + "/healthz")
    page.add_script_tag(url="/socket.io/socket.io.min.js")
    ack = page.evaluate(JS_CLIENT, [session_id, text])
    assert isinstance(ack, dict) and "id" in ack, ack
    return page
