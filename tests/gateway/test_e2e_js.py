"""The session gateway end to end with the official Node ``socket.io-client`` against ``supervisor serve``.

Each scenario is one Node process driving one socket (tests/js/scenario.mjs); several scenarios run
concurrently for several connections. The trio client of ``server.client`` plays the other side where a
test needs something to happen between two scenarios.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import trio

from server.client import open_client
from tests.gateway.conftest import ALICE, BOB
from tests.gateway.server_process import ServerProcess
from tests.support.js import ScenarioResult, run_scenario

pytestmark = pytest.mark.js

_ids = itertools.count()
READY = {"op": "expect", "type": "event", "name": "oh_event", "count": 1}


def conversation() -> str:
    return f"js-{next(_ids)}"


def message(text: str) -> dict[str, Any]:
    return {"action": "message", "args": {"content": text}}


def scenario(
    server: ServerProcess,
    cid: str | None,
    steps: list[dict[str, Any]],
    *,
    latest: int | None = None,
    token: str | None = ALICE,
) -> dict[str, Any]:
    query: dict[str, str] = {}
    if cid is not None:
        query["conversation_id"] = cid
    if latest is not None:
        query["latest_event_id"] = str(latest)
    return {
        "url": server.url,
        "transports": ["websocket"],
        "query": query,
        "auth": {"token": token} if token is not None else {},
        "timeout": 20000,
        "steps": steps,
    }


def oh_events(result: ScenarioResult) -> list[dict[str, Any]]:
    return [e["args"][0] for e in result.events("oh_event")]


def log_ids(events: list[dict[str, Any]]) -> list[int]:
    return [e["id"] for e in events if not e.get("status_update")]


async def test_send_and_receive(hook_server: ServerProcess) -> None:
    result = await run_scenario(scenario(hook_server, conversation(), [
        READY,
        {"op": "emitWithAck", "event": "oh_user_action", "args": [message("hi from node")]},
        {"op": "expect", "type": "event", "name": "oh_event", "count": 3},
    ]))
    assert result.first("ack")["args"] == [{"id": 0}]
    kinds = [(line["type"], (line.get("args") or [{}])[0].get("id")) for line in result.lines]
    assert kinds.index(("event", 0)) < kinds.index(("ack", 0))  # the echo goes out before the ack
    events = oh_events(result)
    assert events[0] == {"status_update": True, "type": "info", "id": "STATUS$READY", "message": "ready"}
    assert [(e["id"], e["source"], e["message"]) for e in events[1:]] == [
        (0, "user", "hi from node"), (1, "agent", "echo: hi from node")]


async def test_two_connections_both_see_every_event(hook_server: ServerProcess) -> None:
    cid = conversation()
    results: dict[str, ScenarioResult] = {}

    async def run(name: str, steps: list[Any]) -> None:
        results[name] = await run_scenario(scenario(hook_server, cid, steps))

    every = {"op": "expect", "type": "event", "name": "oh_event", "count": 5}  # READY + 4 log events
    async with trio.open_nursery() as nursery:
        nursery.start_soon(run, "a", [READY, {"op": "emitWithAck", "event": "oh_user_action",
                                               "args": [message("from a")]}, every])
        nursery.start_soon(run, "b", [READY, {"op": "emitWithAck", "event": "oh_user_action",
                                               "args": [message("from b")]}, every])
    for result in results.values():
        assert log_ids(oh_events(result)) == [0, 1, 2, 3]
    contents = {e["message"] for e in oh_events(results["a"])} - {"ready"}
    assert {"from a", "from b"} <= contents


async def test_reconnect_with_latest_event_id_gets_the_missed_events(hook_server: ServerProcess) -> None:
    cid = conversation()
    first = await run_scenario(scenario(hook_server, cid, [
        READY,
        {"op": "emitWithAck", "event": "oh_user_action", "args": [message("one")]},
        {"op": "expect", "type": "event", "name": "oh_event", "count": 3},
        {"op": "disconnect"},
    ]))
    seen = log_ids(oh_events(first))
    assert seen == [0, 1]
    async with open_client(hook_server.url, query={"conversation_id": cid}, auth={"token": ALICE},
                           reconnect=False) as other:  # events happen while node is away
        for text in ("two", "three"):
            await other.call("oh_user_action", message(text))
    second = await run_scenario(scenario(hook_server, cid, [
        {"op": "expect", "type": "event", "name": "oh_event", "count": 5},  # 4 replayed + READY
        {"op": "emitWithAck", "event": "oh_user_action", "args": [message("four")]},
        {"op": "expect", "type": "event", "name": "oh_event", "count": 7},
    ], latest=seen[-1]))
    events = oh_events(second)
    assert log_ids(events[:4]) == [2, 3, 4, 5] and events[4]["id"] == "STATUS$READY"
    assert log_ids(events) == [2, 3, 4, 5, 6, 7]
    assert second.first("ack")["args"] == [{"id": 6}]


@pytest.mark.parametrize(
    ("cid", "token", "msg_id"),
    [
        (None, ALICE, "CONNECT$MISSING_CONVERSATION_ID"),
        ("js-refused", "wrong", "CONNECT$INVALID_CREDENTIALS"),
    ],
)
async def test_refusals(hook_server: ServerProcess, cid: str | None, token: str, msg_id: str) -> None:
    result = await run_scenario(scenario(hook_server, cid, [{"op": "expect", "type": "connect_error"}],
                                         token=token))
    error = result.first("connect_error")
    assert error["data"] == {"msg_id": msg_id} and error["message"]
    assert not result.of_type("connect")


async def test_another_users_session_is_forbidden(hook_server: ServerProcess) -> None:
    cid = conversation()
    await run_scenario(scenario(hook_server, cid, [
        READY, {"op": "emitWithAck", "event": "oh_user_action", "args": [message("alice's")]}]))
    result = await run_scenario(scenario(hook_server, cid, [{"op": "expect", "type": "connect_error"}],
                                         token=BOB))
    assert result.first("connect_error")["data"] == {"msg_id": "CONNECT$FORBIDDEN"}


async def test_malformed_and_oversize_actions_get_error_acks(hook_server: ServerProcess) -> None:
    result = await run_scenario(scenario(hook_server, conversation(), [
        READY,
        {"op": "emitWithAck", "event": "oh_user_action", "args": ["just a string"]},
        {"op": "emitWithAck", "event": "oh_user_action", "args": [{"action": "message"}, "extra"]},
        {"op": "emitWithAck", "event": "oh_user_action", "args": [message("y" * (300 * 1024))]},
        {"op": "emitWithAck", "event": "oh_user_action", "args": [message("fine")]},
    ]))
    acks = [a["args"][0] for a in result.of_type("ack")]
    assert [a.get("msg_id") for a in acks[:3]] == ["ACTION$INVALID", "ACTION$INVALID", "ACTION$TOO_LARGE"]
    assert all(a["error"] for a in acks[:3])
    assert acks[3] == {"id": 0}  # the session still works and stored nothing bad
