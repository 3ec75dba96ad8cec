"""``supervisor serve --agent shell`` and ``--agent 'exec:...'`` as real subprocesses, driven by
python-socketio's client: statuses in order, commands with streaming and exit codes, timeout and C-c, the
workspace across passivation and a server restart, no process left below the server after passivation,
the admin API's runtime view and ``sessions delete``, the refusal on a public host without auth, and exec
agents (the example, and crashing ones that take down their own session only)."""

from __future__ import annotations

import itertools
import json
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import trio

from actors.runtimes.process import descendants
from tests.gateway.pysio_client import PySioSession, athread
from tests.gateway.server_process import ServerProcess, supervisor_command
from tests.runtimes.test_exec import EXAMPLE, misbehaving

Events = list[dict[str, Any]]
_ids = itertools.count()


def conversation() -> str:
    return f"rt-{next(_ids)}"


def statuses(events: Events) -> list[str]:
    return [e["id"] for e in events if e.get("status_update")]


def finished(cause: int) -> Any:
    def check(events: Events) -> bool:
        return any(e.get("cause") == cause and e["extras"]["metadata"]["exit_code"] != -1 for e in events)
    return check


def final_of(events: Events, cause: int) -> dict[str, Any]:
    return next(e for e in events if e.get("cause") == cause and e["extras"]["metadata"]["exit_code"] != -1)


async def joined(server: ServerProcess, cid: str, latest: int | None = None) -> PySioSession:
    client = PySioSession()
    await athread(client.connect, server.url, cid, latest)
    await athread(client.wait_for, lambda evs: "STATUS$READY" in statuses(evs), 20)
    return client


async def run(client: PySioSession, command: str, wait: float = 20, **args: Any) -> dict[str, Any]:
    ack = await athread(client.act, {"action": "run", "args": {"command": command, **args}})
    events = await athread(client.wait_for, finished(ack["id"]), wait)
    return final_of(events, ack["id"])


def admin(server: ServerProcess, method: str, path: str) -> dict[str, Any]:
    token = (server.workdir / "data" / "admin-token").read_text().strip()
    req = urllib.request.Request(server.url + path, method=method,
                                 headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        body: dict[str, Any] = json.loads(resp.read())
        return body


async def restarted(server: ServerProcess, cid: str) -> None:
    while not (await athread(admin, server, "GET", f"/admin/sessions/{cid}")).get("restarts"):  # noqa: ASYNC110
        await trio.sleep(0.1)


def scrape(server: ServerProcess) -> str:
    token = (server.workdir / "data" / "admin-token").read_text().strip()
    req = urllib.request.Request(server.url + "/metrics", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        text: str = resp.read().decode()
        return text


async def no_descendants(server: ServerProcess) -> None:
    assert server.pid is not None
    with trio.fail_after(15):
        while descendants(server.pid):  # noqa: ASYNC110
            await trio.sleep(0.05)


async def test_shell_commands_statuses_and_interrupts(tmp_path: Path) -> None:
    with ServerProcess(tmp_path, "--agent", "shell", "--close-delay", "never") as server:
        cid = conversation()
        client = await joined(server, cid)
        try:
            assert statuses(client.events) == ["STATUS$STARTING_RUNTIME", "STATUS$RUNTIME_STARTED",
                                               "STATUS$READY"]
            done = await run(client, "echo hi; exit_code_is() { return 4; }; exit_code_is")
            assert done["content"].strip() == "hi" and done["extras"]["metadata"]["exit_code"] == 4
            assert done["extras"]["metadata"]["working_dir"] == str(tmp_path / "data" / "workspaces" / cid)
            streamed = await run(client, "for i in 1 2 3; do echo n$i; sleep 0.6; done")
            parts = [e for e in client.events if e.get("cause") == streamed["cause"]]
            assert len(parts) >= 2 and parts[0]["extras"]["metadata"]["exit_code"] == -1
            timed = await run(client, "sleep 60", wait=30, timeout=1)
            assert timed["extras"]["metadata"]["exit_code"] != 0
            ack = await athread(client.act, {"action": "run", "args": {"command": "sleep 60"}})
            await trio.sleep(0.5)
            started = time.monotonic()
            await athread(client.act, {"action": "run", "args": {"command": "C-c", "is_input": True}})
            events = await athread(client.wait_for, finished(ack["id"]), 10)
            assert time.monotonic() - started < 8
            assert "interrupted" in final_of(events, ack["id"])["extras"]["metadata"]["suffix"]
            view = await athread(admin, server, "GET", f"/admin/sessions/{cid}")
            assert view["runtime"]["kind"] == "shell" and view["runtime"]["pid"] > 0
            assert view["runtime"]["started_at"] <= time.time()
            metrics = await athread(scrape, server)
            assert "runtime_processes_alive 1.0" in metrics and "runtime_start_seconds_count" in metrics
        finally:
            await athread(client.close)


async def test_workspace_across_passivation_and_restart_and_nothing_left(tmp_path: Path) -> None:
    with ServerProcess(tmp_path, "--agent", "shell", "--close-delay", "0.5") as server:
        cid = conversation()
        client = await joined(server, cid)
        await run(client, "mkdir -p deep && cd deep && echo persisted > f.txt")
        assert server.pid is not None and descendants(server.pid)
        await athread(client.close)
        await no_descendants(server)  # passivated: bash and every process below it ended
        client = await joined(server, cid, latest=10**6)
        out = await run(client, "pwd; cat f.txt")
        assert out["content"].split() == [str(tmp_path / "data" / "workspaces" / cid / "deep"), "persisted"]
        await athread(client.close)
        server.restart()
        client = await joined(server, cid, latest=10**6)
        out = await run(client, "cat f.txt")
        assert out["content"].strip() == "persisted"
        await athread(client.close)
        deleted = await trio.run_process(
            [*supervisor_command(), "sessions", "delete", cid, "--url", server.url,
             "--data-dir", str(tmp_path / "data"), "--json"], capture_stdout=True, capture_stderr=True,
            check=False)
        assert deleted.returncode == 0, deleted.stderr
        assert json.loads(deleted.stdout)["deleted_workspace"] is True
        assert not (tmp_path / "data" / "workspaces" / cid).exists()
        await no_descendants(server)


async def test_shell_refuses_a_public_host_without_auth(tmp_path: Path) -> None:
    refused = await trio.run_process(
        [*supervisor_command(), "serve", "--agent", "shell", "--host", "0.0.0.0", "--port", "0",
         "--data-dir", str(tmp_path), "--allow-unauthenticated-public"],
        capture_stdout=True, capture_stderr=True, check=False)
    assert refused.returncode == 2
    assert refused.stderr.count(b"\n") == 1 and b"refusing to serve --agent shell" in refused.stderr
    refused = await trio.run_process(
        [*supervisor_command(), "serve", "--agent", f"exec:{sys.executable} x.py", "--host", "0.0.0.0",
         "--port", "0", "--data-dir", str(tmp_path)],
        capture_stdout=True, capture_stderr=True, check=False)
    assert refused.returncode == 2 and b"refusing to serve --agent exec" in refused.stderr


async def test_exec_agents_through_the_server(tmp_path: Path) -> None:
    example_spec = EXAMPLE
    with ServerProcess(tmp_path, "--agent", example_spec, "--close-delay", "never") as server:
        cid = conversation()
        client = await joined(server, cid)
        try:
            ack = await athread(client.act, {"action": "message", "args": {"content": "hello"}})
            events = await athread(client.wait_for, lambda evs: any(
                e.get("source") == "agent" and e.get("id", -1) > ack["id"] and e.get("action") == "message"
                for e in evs), 20)
            assert any(e.get("source") == "agent" for e in events)
        finally:
            await athread(client.close)
    for mode in ("crash", "garbage", "flood"):
        workdir = tmp_path / mode
        workdir.mkdir()
        with ServerProcess(workdir, "--agent", misbehaving(mode), "--close-delay", "never") as server:
            bad, good = conversation(), conversation()
            # Each bad agent crashes its own session's actor only (garbage: at start, so every session
            # of that server; crash and flood: on an event, so the other session stays untouched).
            other = await joined(server, good) if mode != "garbage" else None
            client = PySioSession()
            await athread(client.connect, server.url, bad, None)
            try:
                if mode != "garbage":
                    await athread(client.wait_for, lambda evs: "STATUS$READY" in statuses(evs), 20)
                    await athread(client.act, {"action": "message", "args": {"content": "go"}})
                with trio.fail_after(30):
                    await restarted(server, bad)
                if other is not None:
                    view = await athread(admin, server, "GET", f"/admin/sessions/{good}")
                    assert view["live"] and view["restarts"] == 0
                    assert view["runtime"]["pid"] > 0
                assert "exec_agent" in server.log_tail(200) or "exec" in server.log_tail(200)
            finally:
                await athread(client.close)
                if other is not None:
                    await athread(other.close)
