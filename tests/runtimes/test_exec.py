"""The exec agent with real processes: the example agent from examples/, and agents that crash, print
garbage, flood or break the protocol (each raises ExecAgentError in its own session only)."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import trio
from structlog.testing import capture_logs

from actors.runtimes import ExecAgentError, RuntimeConfig
from tests.runtimes.conftest import Emitted, live_agent, my_descendants, user_event

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = f"exec:{shlex.quote(sys.executable)} {shlex.quote(str(ROOT / 'examples' / 'exec_agent.py'))}"
MISBEHAVING = Path(__file__).resolve().parent / "agents" / "misbehaving.py"


def misbehaving(mode: str) -> str:
    return f"exec:{shlex.quote(sys.executable)} {shlex.quote(str(MISBEHAVING))} {mode}"


def leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for sub in exc.exceptions for leaf in leaves(sub)]
    return [exc]


async def crash_of(config: RuntimeConfig, spec: str, *, turn: bool = True, **changes: object) -> str:
    """Run an agent that must fail; return the message of its ExecAgentError (nothing else may be raised,
    and its process must be gone)."""
    before = my_descendants()
    with pytest.raises(BaseException) as info:  # checked below: only ExecAgentError
        async with live_agent(config, spec, "bad", **changes) as agent:
            if turn:
                await agent.handle(user_event("message", content="hi"), Emitted())
            await trio.sleep_forever()  # the reader task's error cancels this
    errors = leaves(info.value)
    assert errors and all(isinstance(e, ExecAgentError) for e in errors), errors
    assert my_descendants() == before
    return " | ".join(str(e) for e in errors)


async def test_the_example_agent_answers_keeps_its_snapshot_and_logs_its_stderr(
    config: RuntimeConfig,
) -> None:
    with capture_logs() as logs:
        async with live_agent(config, EXAMPLE, "conv-1", {"replies": 2}) as agent:
            pid = agent.runtime_info()["pid"]
            emitted = Emitted()
            await agent.handle(user_event("message", content="hi"), emitted)
            await agent.handle(user_event("run", command="ignored"), emitted)
            await agent.handle(user_event("message", content="again"), emitted)
            assert [p["args"]["content"] for p in emitted.payloads] == ["reply 3: hi", "reply 4: again"]
            assert agent.snapshot() == {"replies": 4}
    assert pid not in my_descendants()
    assert my_descendants() == set()
    stderr = [e for e in logs if e["event"] == "agent.stderr"]
    assert [e["line"] for e in stderr] == [
        "exec agent for conv-1 starting with 2 replies",
        "exec agent for conv-1 stopping",
    ]
    assert all(e["session_id"] == "conv-1" for e in stderr)


async def test_a_snapshot_survives_to_the_next_process(config: RuntimeConfig) -> None:
    async with live_agent(config, EXAMPLE, "conv-1") as agent:
        await agent.handle(user_event("message", content="one"), Emitted())
        snapshot = agent.snapshot()
    async with live_agent(config, EXAMPLE, "conv-1", snapshot) as agent:
        emitted = Emitted()
        await agent.handle(user_event("message", content="two"), emitted)
        assert emitted.payloads[0]["args"]["content"] == "reply 2: two"


async def test_an_agent_that_crashes_raises(config: RuntimeConfig) -> None:
    message = await crash_of(config, misbehaving("crash"))
    assert "exit status 3" in message


async def test_an_agent_that_prints_garbage_raises(config: RuntimeConfig) -> None:
    assert "not a JSON line" in await crash_of(config, misbehaving("garbage"), turn=False)


async def test_an_agent_that_floods_raises(config: RuntimeConfig) -> None:
    assert "lines per second" in await crash_of(config, misbehaving("flood"), exec_max_lines_per_second=50.0)


async def test_a_line_over_the_limit_raises(config: RuntimeConfig) -> None:
    assert "limit" in await crash_of(config, misbehaving("long"), turn=False)


async def test_an_emit_outside_a_turn_raises(config: RuntimeConfig) -> None:
    assert "outside a turn" in await crash_of(config, misbehaving("unsolicited"), turn=False)


async def test_an_agent_that_never_gets_ready_raises(config: RuntimeConfig) -> None:
    message = await crash_of(config, misbehaving("silent"), turn=False, exec_start_timeout=0.5)
    assert "ready" in message


async def test_a_crashing_agent_leaves_another_session_alone(config: RuntimeConfig) -> None:
    async with live_agent(config, EXAMPLE, "good") as good:
        assert len(my_descendants()) == 1
        await crash_of(config, misbehaving("crash"))
        emitted = Emitted()
        await good.handle(user_event("message", content="still here"), emitted)
        assert emitted.payloads[0]["args"]["content"] == "reply 1: still here"


async def test_the_example_speaks_the_documented_transcript() -> None:
    """The exchange shown in docs/agents.md, line by line, straight to the example's stdin and stdout."""
    proc = await trio.lowlevel.open_process(
        [sys.executable, str(ROOT / "examples" / "exec_agent.py")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )
    assert proc.stdin is not None and proc.stdout is not None
    out = proc.stdout
    buffer = b""

    async def exchange(line: dict, answers: int) -> list[dict]:
        nonlocal buffer
        await proc.stdin.send_all((json.dumps(line) + "\n").encode())  # type: ignore[union-attr]
        with trio.fail_after(20):
            while buffer.count(b"\n") < answers:
                buffer += await out.receive_some(4096)
        lines, buffer = buffer.split(b"\n")[:answers], b"\n".join(buffer.split(b"\n")[answers:])
        return [json.loads(x) for x in lines]

    assert await exchange({"type": "start", "protocol": 1, "session_id": "demo", "snapshot": None}, 1) == [
        {"type": "ready"}
    ]
    event = {"action": "message", "args": {"content": "hi"}, "source": "user", "timestamp": "t",
             "message": "hi", "id": 0}
    assert await exchange({"type": "event", "event": event}, 2) == [
        {"type": "emit", "event": {"action": "message", "args": {"content": "reply 1: hi"}}},
        {"type": "turn_done"},
    ]
    assert await exchange({"type": "snapshot_request"}, 1) == [
        {"type": "snapshot", "snapshot": {"replies": 1}}
    ]
    await proc.stdin.send_all(b'{"type": "stop"}\n')
    with trio.fail_after(20):
        assert await proc.wait() == 0


async def test_emits_are_agent_events_and_stderr_lines_are_cut(config: RuntimeConfig) -> None:
    with capture_logs() as logs:
        async with live_agent(config, misbehaving("spoof"), "s") as agent:
            emitted = Emitted()
            await agent.handle(user_event("message", content="hi"), emitted)
            assert emitted.payloads == [{"action": "message", "source": "agent", "args": {"content": "me"}}]
    lines = [e["line"] for e in logs if e["event"] == "agent.stderr"]
    assert lines == ["x" * 4096, "after"]
