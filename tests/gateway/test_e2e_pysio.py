"""The session gateway end to end with python-socketio's ``socketio.Client`` against ``supervisor serve``.

The wire contract of docs/protocol.md, seen from a real third-party client over a real socket: acks with
ids, echo fan-out to every connection, replay after reconnect, refusals with their msg_ids, bad actions
answered with errors while other sessions keep working.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import socketio

from tests.gateway.conftest import ALICE, BOB
from tests.gateway.pysio_client import PySioSession, athread
from tests.gateway.server_process import ServerProcess

_ids = itertools.count()


def conversation() -> str:
    return f"pysio-{next(_ids)}"


def message(text: str, **extra: Any) -> dict[str, Any]:
    return {"action": "message", "args": {"content": text}, **extra}


def log_ids(events: list[dict[str, Any]]) -> list[int]:
    return [e["id"] for e in events if not e.get("status_update")]


async def joined(
    server: ServerProcess, cid: str, latest: int | None = None, token: str = ALICE
) -> PySioSession:
    session = PySioSession()
    await athread(session.connect, server.url, cid, latest, token)
    return session


async def test_send_and_receive(hook_server: ServerProcess) -> None:
    cid = conversation()
    client = await joined(hook_server, cid)
    try:
        await athread(client.wait_for, lambda evs: any(e.get("id") == "STATUS$READY" for e in evs))
        assert await athread(client.act, message("hello")) == {"id": 0}
        events = await athread(client.wait_for_id, 1)
        user, agent = (e for e in events if not e.get("status_update"))
        assert user["action"] == "message" and user["args"] == {"content": "hello"}
        assert user["source"] == "user" and user["message"] == "hello" and "timestamp" in user
        assert agent["source"] == "agent" and agent["message"] == "echo: hello" and agent["id"] == 1
    finally:
        await athread(client.close)


async def test_two_connections_on_one_session_both_see_every_event(hook_server: ServerProcess) -> None:
    cid = conversation()
    first, second = await joined(hook_server, cid), await joined(hook_server, cid)
    try:
        for text in ("a", "b"):
            await athread(first.act, message(text))
        assert await athread(second.act, message("c")) == {"id": 4}
        for client in (first, second):
            events = await athread(client.wait_for_id, 5)
            assert log_ids(events) == [0, 1, 2, 3, 4, 5]
    finally:
        await athread(first.close)
        await athread(second.close)


async def test_reconnect_with_latest_event_id_gets_exactly_the_missed_events(
    hook_server: ServerProcess,
) -> None:
    cid = conversation()
    stays, leaves = await joined(hook_server, cid), await joined(hook_server, cid)
    try:
        await athread(leaves.act, message("before"))
        seen = log_ids(await athread(leaves.wait_for_id, 1))
        await athread(leaves.close)
        for text in ("missed-1", "missed-2"):
            await athread(stays.act, message(text))
        await athread(stays.wait_for_id, 5)

        back = await joined(hook_server, cid, latest=seen[-1])
        try:
            events = await athread(back.wait_for, lambda evs: any(e.get("id") == "STATUS$READY" for e in evs))
            assert log_ids(events) == [2, 3, 4, 5]  # replayed in order, nothing before, nothing twice
            assert events[-1]["id"] == "STATUS$READY"  # replay first, then READY, then live
            assert await athread(back.act, message("live")) == {"id": 6}
            assert log_ids(await athread(back.wait_for_id, 7)) == [2, 3, 4, 5, 6, 7]
        finally:
            await athread(back.close)
    finally:
        await athread(stays.close)


@pytest.mark.parametrize(
    ("conversation_id", "token", "msg_id"),
    [
        (None, ALICE, "CONNECT$MISSING_CONVERSATION_ID"),
        ("bad id with spaces", ALICE, "CONNECT$INVALID_CONVERSATION_ID"),
        ("pysio-refused", "not-a-token", "CONNECT$INVALID_CREDENTIALS"),
        ("pysio-refused", None, "CONNECT$INVALID_CREDENTIALS"),
    ],
)
async def test_refusals_carry_their_msg_id(
    hook_server: ServerProcess, conversation_id: str | None, token: str | None, msg_id: str
) -> None:
    client = PySioSession()
    with pytest.raises(socketio.exceptions.ConnectionError):
        await athread(client.connect, hook_server.url, conversation_id, None, token)
    assert isinstance(client.connect_error, dict)
    assert client.connect_error["data"] == {"msg_id": msg_id}
    assert client.connect_error["message"]
    await athread(client.sio.shutdown)


async def test_another_users_session_is_forbidden(hook_server: ServerProcess) -> None:
    cid = conversation()
    alice = await joined(hook_server, cid, token=ALICE)
    try:
        await athread(alice.act, message("mine"))
        intruder = PySioSession()
        with pytest.raises(socketio.exceptions.ConnectionError):
            await athread(intruder.connect, hook_server.url, cid, None, BOB)
        assert intruder.connect_error["data"] == {"msg_id": "CONNECT$FORBIDDEN"}
        await athread(intruder.sio.shutdown)
        assert await athread(alice.act, message("still mine")) == {"id": 2}  # alice is not disturbed
    finally:
        await athread(alice.close)


async def test_bad_actions_get_error_acks_and_other_sessions_keep_working(hook_server: ServerProcess) -> None:
    bad_cid, good_cid = conversation(), conversation()
    bad, good = await joined(hook_server, bad_cid), await joined(hook_server, good_cid)
    try:
        invalid = {"error": "oh_user_action takes one JSON object with a string 'action'",
                   "msg_id": "ACTION$INVALID"}
        assert await athread(bad.act, "not an object") == invalid  # type: ignore[arg-type]
        assert await athread(bad.act, {"args": {}}) == invalid
        assert await athread(bad.act, {"action": 3}) == invalid
        oversize = await athread(bad.act, message("x" * (300 * 1024)))
        assert oversize["msg_id"] == "ACTION$TOO_LARGE" and oversize["error"]
        assert await athread(good.act, message("fine")) == {"id": 0}
        assert await athread(bad.act, message("now valid")) == {"id": 0}  # nothing bad was stored
        assert log_ids(await athread(good.wait_for_id, 1)) == [0, 1]
    finally:
        await athread(bad.close)
        await athread(good.close)


async def test_client_seq_makes_an_action_idempotent(hook_server: ServerProcess) -> None:
    client = await joined(hook_server, conversation())
    try:
        assert await athread(client.act, message("once", client_seq=7)) == {"id": 0}
        assert await athread(client.act, message("once", client_seq=7)) == {"id": 0, "duplicate": True}
        assert await athread(client.act, message("next", client_seq=8)) == {"id": 2}
    finally:
        await athread(client.close)


@pytest.mark.parametrize("transports", [("polling",), ("polling", "websocket")], ids=["polling", "upgrade"])
async def test_polling_and_upgrade_clients_share_a_session_with_a_websocket_client(
    hook_server: ServerProcess, transports: tuple[str, ...]
) -> None:
    cid = conversation()
    ws_client = await joined(hook_server, cid)
    other = PySioSession()
    await athread(other.connect, hook_server.url, cid, None, ALICE, transports=transports)
    try:
        assert await athread(other.act, message("over polling")) == {"id": 0}
        await athread(ws_client.wait_for_id, 1)  # the agent's answer took id 1
        assert await athread(ws_client.act, message("over websocket")) == {"id": 2}
        for client in (ws_client, other):
            events = await athread(client.wait_for_id, 3)
            assert log_ids(events) == [0, 1, 2, 3]
            assert [e["message"] for e in events if not e.get("status_update")] == [
                "over polling", "echo: over polling", "over websocket", "echo: over websocket",
            ]
    finally:
        await athread(other.close)
        await athread(ws_client.close)
