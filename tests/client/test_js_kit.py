"""The JS client test kit (tests/js/scenario.mjs + tests/support/js.py) against the python-socketio server.

Validates the kit itself with the official socket.io-client: connect with query and auth, emit, acks both
ways, binary, server disconnect, reconnect with a new auth, refusal, and a failing ``expect``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from tests.support import js
from tests.support.js import ScenarioFailed, binary, run_scenario
from tests.support.servers import PySioServer

pytestmark = pytest.mark.js


async def test_scenario_connect_emit_ack_and_server_call(pysio: PySioServer) -> None:
    result = await run_scenario(
        {
            "url": pysio.url,
            "transports": ["websocket"],
            "query": {"conversation_id": "c1"},
            "auth": {"token": "t"},
            "acks": {"ask": [{"yes": True}]},
            "steps": [
                {"op": "expect", "type": "connect"},
                {"op": "emit", "event": "message", "args": ["hi", binary(b"\x00\x01")]},
                {"op": "expect", "name": "message-back"},
                {"op": "emitWithAck", "event": "whoami"},
                {"op": "emitWithAck", "event": "message-with-ack", "args": [1, "two"]},
                {"op": "emit", "event": "server-call", "args": ["ask", 5]},
                {"op": "expect", "name": "server-call-result"},
                {"op": "emit", "event": "emit-many", "args": [3]},
                {"op": "expect", "name": "seq", "count": 3},
            ],
        }
    )
    assert result.ok
    assert result.lines[0]["type"] == "connect"
    assert result.events("message-back")[0]["args"] == ["hi", binary(b"\x00\x01")]
    whoami, echo = result.of_type("ack")
    assert whoami["args"][0]["query"] == {"conversation_id": "c1"}
    assert whoami["args"][0]["auth"] == {"token": "t"}
    assert echo["args"] == [1, "two"]
    ask = result.events("ask")[0]
    assert ask["ack"] is True and ask["args"] == [5]
    assert result.events("server-call-result")[0]["args"] == [{"answer": {"yes": True}}]
    assert [e["args"] for e in result.events("seq")] == [[0], [1], [2]]


async def test_scenario_refusal_and_reconnect_with_new_auth(pysio: PySioServer) -> None:
    result = await run_scenario(
        {
            "url": pysio.url,
            "auth": {"token": "bad"},
            "steps": [
                {"op": "expect", "type": "connect_error"},
                {"op": "reconnect", "auth": {"token": "good"}},
                {"op": "expect", "type": "connect"},
                {"op": "emit", "event": "kick"},
                {"op": "expect", "type": "disconnect"},
            ],
        }
    )
    error = result.first("connect_error")
    assert (error["message"], error["data"]) == ("unauthorized", {"msg_id": "AUTH$ERR"})
    assert result.first("disconnect")["reason"] == "io server disconnect"
    assert [line["type"] for line in result] == ["connect_error", "connect", "disconnect", "done"]


async def test_scenario_in_a_namespace_over_polling(pysio: PySioServer) -> None:
    result = await run_scenario(
        {
            "url": pysio.url,
            "transports": ["polling"],
            "namespace": "/custom",
            "steps": [{"op": "emitWithAck", "event": "whoami"}],
        }
    )
    assert result.first("ack")["args"][0]["namespace"] == "/custom"


async def test_a_failed_expectation_exits_non_zero(pysio: PySioServer) -> None:
    scenario = {
        "url": pysio.url,
        "transports": ["websocket"],
        "steps": [{"op": "expect", "type": "connect"}, {"op": "expect", "name": "never", "timeout": 200}],
    }
    with pytest.raises(ScenarioFailed):
        await run_scenario(scenario)
    result = await run_scenario(scenario, check=False)
    assert result.returncode == 2 and not result.ok
    assert result.lines[-1] == {
        "type": "timeout",
        "step": 1,
        "op": "expect",
        "want": {"type": "event", "name": "never", "count": 1},
    }


async def test_scenarios_run_concurrently(pysio: PySioServer) -> None:
    results: list[int] = []

    async def one(n: int) -> None:
        result = await run_scenario(
            {"url": pysio.url, "steps": [{"op": "emitWithAck", "event": "message-with-ack", "args": [n]}]}
        )
        results.append(result.first("ack")["args"][0])

    async with trio.open_nursery() as nursery:
        for n in range(3):
            nursery.start_soon(one, n)
    assert sorted(results) == [0, 1, 2]


def test_a_missing_js_install_fails_with_the_command_to_fix_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(js, "JS_DIR", tmp_path)
    with pytest.raises(RuntimeError, match="npm ci --prefix tests/js"):
        js.require_node()
