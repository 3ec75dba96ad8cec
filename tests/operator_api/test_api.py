"""The admin HTTP API and /metrics on a real server (in-process, real sockets on 127.0.0.1)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

from server.app import SupervisorApp
from server.cli.http_client import HttpResponse, request
from server.client import Client, open_client
from server.config import Config

TOKEN = "test-admin-token"
AUTH = [("Authorization", f"Bearer {TOKEN}")]


@pytest.fixture
async def app() -> AsyncIterator[SupervisorApp]:
    config = Config().override(
        http={"port": 0}, store={"url": "memory://"}, admin={"token": TOKEN}, supervisor={"close_delay": None}
    )
    server = SupervisorApp(config)
    async with trio.open_nursery() as nursery:
        await nursery.start(server.run)
        yield server
        await server.shutdown()


async def get(app: SupervisorApp, path: str, **query: Any) -> HttpResponse:
    return await request("GET", app.url, path, query=query or None, headers=AUTH, timeout=10)


async def post(app: SupervisorApp, path: str) -> HttpResponse:
    return await request("POST", app.url, path, headers=AUTH, timeout=10)


async def say(client: Client, text: str) -> int:
    ack = await client.call("oh_user_action", {"action": "message", "args": {"content": text}})
    event_id: int = ack["id"]
    return event_id


def connect(app: SupervisorApp, session_id: str) -> Any:
    return open_client(app.url, query={"conversation_id": session_id}, reconnect=False)


@pytest.mark.parametrize(
    "path", ["/admin/status", "/admin/config", "/admin/sessions", "/admin/sessions/x", "/metrics"]
)
@pytest.mark.parametrize("headers", [[], [("Authorization", "Bearer wrong")], [("Authorization", TOKEN)]])
async def test_every_admin_route_refuses_a_missing_or_wrong_token(
    app: SupervisorApp, path: str, headers: list[tuple[str, str]]
) -> None:
    response = await request("GET", app.url, path, headers=headers)
    assert response.status == 401
    assert response.json()["error"]["code"] == "unauthorized"
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_healthz_needs_no_token(app: SupervisorApp) -> None:
    response = await request("GET", app.url, "/healthz")
    assert response.status == 200
    assert response.json()["status"] == "ok"


async def test_status_counts_sessions_connections_and_rehydrations(app: SupervisorApp) -> None:
    async with connect(app, "s1") as client:
        await say(client, "hello")
        body = (await get(app, "/admin/status")).json()
        assert body["connections"] == 1
        assert body["live_sessions"] == 1
        assert body["sessions_by_state"]["active"] == 1
        assert body["rehydrations"] == 1
        assert body["restarts"] == 0
        assert body["uptime_seconds"] >= 0
    await app.supervisor.passivate("s1")
    body = (await get(app, "/admin/status")).json()
    assert body["sessions_by_state"]["passivated"] == 1
    assert body["stored_sessions"] == 1
    assert body["passivations"] == 1


async def test_show_reports_connections_with_remote_address_and_since(app: SupervisorApp) -> None:
    async with connect(app, "s1") as client:
        await say(client, "hello")
        body = (await get(app, "/admin/sessions/s1")).json()
        assert body["state"] == "active"
        assert body["connections"] == 1
        assert body["event_count"] >= 1
        (conn,) = body["connection_details"]
        assert conn["remote_address"] == "127.0.0.1"
        assert conn["since"] > 0
        assert conn["transport"] == "websocket"
        assert body["restarts"] == 0
        assert "mailbox_depth" in body and "last_activity" in body


async def test_list_includes_passivated_sessions_and_filters_by_state(app: SupervisorApp) -> None:
    for sid in ("a", "b", "c"):
        async with connect(app, sid) as client:
            await say(client, "hi")
    await app.supervisor.passivate("b")
    body = (await get(app, "/admin/sessions")).json()
    assert [(s["session_id"], s["state"]) for s in body["sessions"]] == [
        ("a", "idle"), ("b", "passivated"), ("c", "idle"),
    ]
    body = (await get(app, "/admin/sessions", state="passivated")).json()
    assert [s["session_id"] for s in body["sessions"]] == ["b"]
    first = (await get(app, "/admin/sessions", limit=2)).json()
    assert [s["session_id"] for s in first["sessions"]] == ["a", "b"]
    rest = (await get(app, "/admin/sessions", limit=2, after=first["next_after"])).json()
    assert [s["session_id"] for s in rest["sessions"]] == ["c"]
    assert rest["next_after"] is None


async def test_passivate_then_kill_then_events_survive(app: SupervisorApp) -> None:
    async with connect(app, "s1") as client:
        first = await say(client, "one")
    response = await post(app, "/admin/sessions/s1/passivate")
    assert response.json() == {"session_id": "s1", "was_live": True, "state": "passivated"}
    assert app.supervisor.info("s1") is None
    again = (await post(app, "/admin/sessions/s1/passivate")).json()
    assert again["was_live"] is False
    async with connect(app, "s1") as client:
        await say(client, "two")
    killed = (await post(app, "/admin/sessions/s1/kill")).json()
    assert killed["was_live"] is True
    assert app.supervisor.info("s1") is None
    events = (await get(app, "/admin/sessions/s1/events")).json()["events"]
    contents = [e["args"]["content"] for e in events if e["source"] == "user"]
    assert contents == ["one", "two"]  # killed without a snapshot, nothing of the log is lost
    assert events[0]["id"] == first
    tail = (await get(app, "/admin/sessions/s1/events", after=events[-2]["id"], limit=5)).json()
    assert [e["id"] for e in tail["events"]] == [events[-1]["id"]]
    assert tail["next_after"] == events[-1]["id"]


async def test_unknown_session_is_404_everywhere(app: SupervisorApp) -> None:
    for method, path in [("GET", "/admin/sessions/nope"), ("POST", "/admin/sessions/nope/passivate"),
                         ("POST", "/admin/sessions/nope/kill"), ("GET", "/admin/sessions/nope/events")]:
        response = await request(method, app.url, path, headers=AUTH)
        assert response.status == 404, path
        assert response.json()["error"]["code"] == "session_not_found"


async def test_bad_requests_get_clear_json_errors(app: SupervisorApp) -> None:
    response = await get(app, "/admin/sessions", state="sleepy")
    assert response.status == 400
    assert "sleepy" in response.json()["error"]["message"]
    response = await get(app, "/admin/sessions", limit="many")
    assert response.status == 400
    response = await request("GET", app.url, "/admin/sessions/x/kill", headers=AUTH)
    assert response.status == 405
    assert response.headers["allow"] == "POST"
    response = await get(app, "/admin/nothing")
    assert response.status == 404


async def test_metrics_parse_and_count_events_and_passivations(app: SupervisorApp) -> None:
    async with connect(app, "s1") as client:
        await say(client, "hello")
        families = _scrape(await get(app, "/metrics"))
        assert _value(families, "supervisor_connections") == 1
        assert _value(families, "supervisor_sessions", state="active") == 1
        assert _value(families, "supervisor_events_total") >= 1
    await post(app, "/admin/sessions/s1/passivate")
    families = _scrape(await get(app, "/metrics"))
    assert _value(families, "supervisor_passivations_total", reason="operator") == 1
    assert _value(families, "supervisor_rehydrations_total") == 1
    assert _value(families, "supervisor_sessions", state="active") == 0
    assert _value(families, "supervisor_connections") == 0
    assert _value(families, "supervisor_rehydrate_seconds_count") == 1
    assert _value(families, "supervisor_turn_seconds_count") == 1  # the echo agent's one turn
    for name in ("supervisor_mailbox_depth", "supervisor_restarts", "supervisor_uptime_seconds"):
        assert name in families


def _scrape(response: HttpResponse) -> dict[str, Any]:
    assert response.status == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {f.name: f for f in text_string_to_metric_families(response.body.decode())}


def _value(families: dict[str, Any], sample_name: str, **labels: str) -> float:
    family_name = sample_name.removesuffix("_total").removesuffix("_count")
    total = 0.0
    found = False
    for sample in families[family_name].samples:
        if sample.name == sample_name and all(sample.labels.get(k) == v for k, v in labels.items()):
            total += sample.value
            found = True
    assert found, (sample_name, labels)
    return total


async def test_config_shows_the_effective_tree_with_the_token_masked(app: SupervisorApp) -> None:
    body = (await get(app, "/admin/config")).json()
    assert body["store"]["url"] == "memory://"
    assert body["supervisor"]["close_delay"] is None
    assert body["supervisor"]["restart"]["policy"] == "transient"
    assert body["admin"]["token"] == "<masked>"
    assert TOKEN not in str(body)
    sections = "http engineio socketio gateway supervisor store cluster runtime admin logging"
    assert list(body) == sections.split()
