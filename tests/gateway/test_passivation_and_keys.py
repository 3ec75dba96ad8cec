"""``supervisor serve --api-key ... --close-delay 0.5`` end to end: API-key refusals, and a session that
passivates after its close delay and comes back, history and ids intact, on the next connect.

Real time is unavoidable against a subprocess: the close delay is short (0.5 s, plus the supervisor's
jitter of up to 2 s), and the tests wait on conditions, never on fixed sleeps.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import trio

from server.client import ConnectError, open_client
from server.testing import collect_oh_events, event_ids, is_status, next_oh_event, user_message
from tests.gateway.server_process import ServerProcess

KEY = "test-api-key"


@pytest.fixture(scope="module")
def key_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    workdir = tmp_path_factory.mktemp("key-server")
    with ServerProcess(workdir, "--api-key", KEY, "--close-delay", "0.5") as server:
        yield server


async def live_sessions(server: ServerProcess) -> int:
    stream = await trio.open_tcp_stream("127.0.0.1", server.port)
    async with stream:
        await stream.send_all(b"GET /healthz HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n")
        data = b""
        while chunk := await stream.receive_some(65536):
            data += chunk
    body = data.split(b"\r\n\r\n", 1)[1]
    count: int = json.loads(body)["live_sessions"]
    return count


@pytest.mark.parametrize(
    ("auth", "query"),
    [(None, {}), ({"token": "wrong"}, {}), ({}, {"session_api_key": "wrong"})],
    ids=["missing", "wrong-auth", "wrong-query"],
)
async def test_bad_credentials_are_refused(
    key_server: ServerProcess, auth: Any, query: dict[str, str]
) -> None:
    with pytest.raises(ConnectError) as info:
        async with open_client(key_server.url, query={"conversation_id": "keyed", **query}, auth=auth,
                               reconnect=False):
            pass
    assert info.value.data == {"msg_id": "CONNECT$INVALID_CREDENTIALS"}


@pytest.mark.parametrize(
    ("auth", "query"), [({"token": KEY}, {}), (None, {"session_api_key": KEY})], ids=["auth", "query"]
)
async def test_the_key_is_accepted_in_auth_or_in_the_query(
    key_server: ServerProcess, auth: Any, query: dict[str, str]
) -> None:
    async with open_client(key_server.url, query={"conversation_id": "keyed-ok", **query}, auth=auth,
                           reconnect=False) as client:
        assert is_status("STATUS$READY")(await next_oh_event(client))


async def test_session_passivates_after_close_delay_and_rehydrates(key_server: ServerProcess) -> None:
    cid = "passivating"
    async with open_client(key_server.url, query={"conversation_id": cid}, auth={"token": KEY},
                           reconnect=False) as client:
        for text in ("one", "two"):
            await client.call("oh_user_action", user_message(text))
        await collect_oh_events(client, until=3)
        assert await live_sessions(key_server) >= 1
    with trio.fail_after(15):  # 0.5 s close delay + up to 2 s jitter, on the real clock
        while await live_sessions(key_server) > 0:  # noqa: ASYNC110 - another process: poll it
            await trio.sleep(0.1)

    async with open_client(key_server.url, query={"conversation_id": cid, "latest_event_id": "-1"},
                           auth={"token": KEY}, reconnect=False) as client:
        history = await collect_oh_events(client, until=is_status("STATUS$READY"))
        assert event_ids(history) == [0, 1, 2, 3]
        assert [e["message"] for e in history[:4]] == ["one", "echo: one", "two", "echo: two"]
        assert await client.call("oh_user_action", user_message("three")) == {"id": 4}
        assert event_ids(await collect_oh_events(client, until=5)) == [4, 5]
