"""The shell runtime with real bash processes: commands, streaming, exit codes, timeouts, interrupts, the
output cap, persistence within and across lifespans, isolation, and no process left behind."""

from __future__ import annotations

import os

import pytest
import trio

from actors.runtimes import RuntimeConfig, delete_workspace, runs_user_commands, workspace_name
from actors.runtimes.shell_agent import ShellAgent
from tests.runtimes.conftest import Emitted, live_agent, my_descendants, run_event, user_event


async def run(agent: ShellAgent, command: str, **args: object) -> list[dict]:
    """Run one command; return the observations it produced (the final one last)."""
    emitted = Emitted()
    await agent.handle(run_event(command, **args), emitted)
    return emitted.payloads


def final(observations: list[dict]) -> dict:
    assert observations[-1]["extras"]["metadata"]["exit_code"] != -1
    return observations[-1]


async def test_run_answers_with_a_cmd_output_observation(config: RuntimeConfig) -> None:
    async with live_agent(config, "shell", "s1") as agent:
        event = run_event("echo hello")
        emitted = Emitted()
        await agent.handle(event, emitted)
        (obs,) = emitted.payloads
        workspace = str(config.workspaces_dir / "s1")
        assert obs["observation"] == "run"
        assert obs["content"] == "hello\n"
        assert obs["cause"] == event.id
        assert obs["extras"]["command"] == "echo hello"
        meta = obs["extras"]["metadata"]
        assert meta["exit_code"] == 0
        assert meta["working_dir"] == workspace
        assert meta["pid"] == agent.shell.pid
        assert os.readlink(f"/proc/{meta['pid']}/cwd") == workspace


async def test_exit_codes_and_stderr(config: RuntimeConfig) -> None:
    async with live_agent(config, "shell", "s1") as agent:
        assert final(await run(agent, "false"))["extras"]["metadata"]["exit_code"] == 1
        assert final(await run(agent, "sh -c 'exit 7'"))["extras"]["metadata"]["exit_code"] == 7
        obs = final(await run(agent, "echo oops >&2; ls /nonexistent-dir"))
        assert obs["content"].startswith("oops\n")
        assert obs["extras"]["metadata"]["exit_code"] == 2
        syntax = final(await run(agent, "if then fi ("))
        assert syntax["extras"]["metadata"]["exit_code"] == 2
        assert final(await run(agent, "echo still here"))["content"] == "still here\n"


async def test_exit_in_a_command_reports_its_status_and_the_next_command_gets_a_new_shell(
    config: RuntimeConfig,
) -> None:
    async with live_agent(config, "shell", "s1") as agent:
        await run(agent, "mkdir sub && cd sub")
        first_pid = agent.shell.pid
        obs = final(await run(agent, "exit 3"))
        assert obs["extras"]["metadata"]["exit_code"] == 3
        assert "new one" in obs["extras"]["metadata"]["suffix"]
        after = final(await run(agent, "pwd"))
        assert after["content"] == str(config.workspaces_dir / "s1" / "sub") + "\n"
        assert after["extras"]["metadata"]["pid"] != first_pid


async def test_cd_variables_and_functions_persist_within_a_lifespan(config: RuntimeConfig) -> None:
    async with live_agent(config, "shell", "s1") as agent:
        await run(agent, "mkdir -p a/b && cd a/b")
        await run(agent, "export GREETING=hi; count=41; inc() { count=$((count+1)); }")
        obs = final(await run(agent, "inc; echo $GREETING $count; pwd"))
        workspace = config.workspaces_dir / "s1"
        assert obs["content"] == f"hi 42\n{workspace}/a/b\n"
        assert obs["extras"]["metadata"]["working_dir"] == f"{workspace}/a/b"


async def test_output_streams_while_the_command_runs(config: RuntimeConfig) -> None:
    async with live_agent(config, "shell", "s1") as agent:
        observations = await run(agent, "for i in 1 2 3; do echo line$i; sleep 0.4; done; exit_now=1")
        codes = [o["extras"]["metadata"]["exit_code"] for o in observations]
        assert len(observations) >= 3, observations
        assert codes[:-1] == [-1] * (len(codes) - 1)
        assert codes[-1] == 0
        assert "".join(o["content"] for o in observations) == "line1\nline2\nline3\n"
        assert all(o["cause"] == observations[0]["cause"] for o in observations)
        assert observations[0]["message"].endswith("is still running.")


async def test_a_command_past_its_timeout_is_interrupted_and_the_shell_stays(config: RuntimeConfig) -> None:
    async with live_agent(config, "shell", "s1") as agent:
        await run(agent, "kept=yes; cd /tmp")
        pid = agent.shell.pid
        started = trio.current_time()
        obs = final(await run(agent, "echo before; sleep 30; echo never", timeout=1))
        assert trio.current_time() - started < 10
        meta = obs["extras"]["metadata"]
        assert meta["exit_code"] == 130
        assert "timed out after 1 seconds" in meta["suffix"]
        assert "never" not in obs["content"]
        again = final(await run(agent, "echo $kept; pwd"))
        assert again["content"] == "yes\n/tmp\n"
        assert again["extras"]["metadata"]["pid"] == pid


async def test_a_command_that_ignores_sigint_is_killed_after_the_grace(config: RuntimeConfig) -> None:
    ignore = "python3 -c 'import signal,time; signal.signal(signal.SIGINT, signal.SIG_IGN); time.sleep(60)'"
    async with live_agent(config, "shell", "s1") as agent:
        await run(agent, "kept=yes")
        started = trio.current_time()
        obs = final(await run(agent, ignore, timeout=1))
        # SIGINT is ignored, SIGKILL after the grace ends it; bash's INT trap then reports 130.
        assert obs["extras"]["metadata"]["exit_code"] == 130
        assert 1.5 <= trio.current_time() - started < 10
        assert my_descendants() == {agent.shell.pid}
        assert final(await run(agent, "echo $kept"))["content"] == "yes\n"


async def test_a_builtin_loop_past_its_timeout_costs_the_shell_not_the_workspace(
    config: RuntimeConfig,
) -> None:
    async with live_agent(config, "shell", "s1") as agent:
        await run(agent, "mkdir d; cd d; touch kept.txt")
        obs = final(await run(agent, "while :; do :; done", timeout=0.5))
        assert obs["extras"]["metadata"]["exit_code"] != 0
        assert "timed out" in obs["extras"]["metadata"]["suffix"]
        again = final(await run(agent, "ls"))
        assert again["content"] == "kept.txt\n"


async def test_a_cancelled_turn_does_not_leak_into_the_next_command(config: RuntimeConfig) -> None:
    async with live_agent(config, "shell", "s1") as agent:
        emitted = Emitted()
        with trio.move_on_after(1):  # as the actor's turn watchdog would
            await agent.handle(run_event("echo early; sleep 30; echo late"), emitted)
        assert [p["content"] for p in emitted.payloads] == ["early\n"]
        obs = final(await run(agent, "echo next"))
        assert obs["content"] == "next\n"
        assert obs["extras"]["metadata"]["exit_code"] == 0


async def test_c_c_interrupts_the_running_command(config: RuntimeConfig) -> None:
    async with live_agent(config, "shell", "s1") as agent:
        emitted = Emitted()
        event = run_event("echo started; sleep 30; echo never")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(agent.handle, event, emitted)
            await emitted.wait_for(lambda p: p["content"] == "started\n")
            assert agent.intercept(run_event("C-c", is_input=True)) is True
        obs = final(emitted.payloads)
        assert obs["cause"] == event.id
        assert obs["extras"]["metadata"]["exit_code"] == 130
        assert "interrupted" in obs["extras"]["metadata"]["suffix"]
        assert final(await run(agent, "echo ok"))["content"] == "ok\n"


async def test_is_input_goes_to_the_running_command(config: RuntimeConfig) -> None:
    async with live_agent(config, "shell", "s1") as agent:
        emitted = Emitted()
        async with trio.open_nursery() as nursery:
            reader = run_event("echo waiting; read answer; echo got:$answer")
            nursery.start_soon(agent.handle, reader, emitted)
            await emitted.wait_for(lambda p: p["content"] == "waiting\n")
            assert agent.intercept(run_event("forty-two", is_input=True)) is True
        assert final(emitted.payloads)["content"] == "got:forty-two\n"


async def test_is_input_with_nothing_running_is_answered_not_taken(config: RuntimeConfig) -> None:
    async with live_agent(config, "shell", "s1") as agent:
        event = run_event("C-c", is_input=True)
        assert agent.intercept(event) is False
        obs = final(await run(agent, "C-c", is_input=True))
        assert obs["extras"]["metadata"]["exit_code"] == 1
        assert "no command is running" in obs["extras"]["metadata"]["suffix"]
        assert agent.intercept(user_event("message", content="hi")) is False


async def test_output_is_capped_with_a_marker(config: RuntimeConfig) -> None:
    async with live_agent(config, "shell", "s1", max_output_bytes=1000, stream_interval=60.0) as agent:
        obs = final(await run(agent, "head -c 5000 /dev/zero | tr '\\0' a; echo; echo done"))
        assert obs["content"].startswith("a" * 1000 + "\n[... output truncated: ")
        assert "4006 more bytes not shown" in obs["content"]
        assert obs["extras"]["metadata"]["exit_code"] == 0


async def test_workspace_and_working_dir_survive_the_next_lifespan(config: RuntimeConfig) -> None:
    async with live_agent(config, "shell", "s1") as agent:
        await run(agent, "mkdir -p src && cd src && echo 'print(1)' > main.py && only_here=1")
        first_pid = agent.shell.pid
        snapshot = agent.snapshot()
    assert first_pid not in my_descendants()
    async with live_agent(config, "shell", "s1", snapshot) as agent:
        obs = final(await run(agent, "cat main.py; pwd; echo ${only_here:-unset}"))
        workspace = config.workspaces_dir / "s1"
        assert obs["content"] == f"print(1)\n{workspace}/src\nunset\n"
        assert agent.shell.pid != first_pid


async def test_no_process_is_left_after_the_lifespan(config: RuntimeConfig) -> None:
    assert my_descendants() == set()
    async with live_agent(config, "shell", "s1") as agent:
        await run(agent, "sleep 300 & setsid sleep 301 & nohup sleep 302 >/dev/null 2>&1 &")
        emitted = Emitted()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(agent.handle, run_event("echo busy; sleep 303"), emitted)
            await emitted.wait_for(lambda p: p["content"] == "busy\n")
            assert len(my_descendants()) >= 5  # bash and four sleeps
            nursery.cancel_scope.cancel()  # the turn is cancelled mid-command, then the lifespan ends
    assert my_descendants() == set()


async def test_sessions_have_isolated_shells_and_directories(config: RuntimeConfig) -> None:
    async with (
        live_agent(config, "shell", "alice") as alice,
        live_agent(config, "shell", "../bob") as bob,
    ):
        await run(alice, "echo secret > alice.txt; who=alice")
        await run(bob, "who=bob")
        a = final(await run(alice, "ls; pwd; echo $who"))
        b = final(await run(bob, "ls; pwd; echo $who"))
        assert a["content"] == f"alice.txt\n{config.workspaces_dir / 'alice'}\nalice\n"
        bob_dir = config.workspaces_dir / workspace_name("../bob")
        assert b["content"] == f"{bob_dir}\nbob\n"
        assert bob_dir.parent == config.workspaces_dir
        assert alice.shell.pid != bob.shell.pid


async def test_a_launcher_prefix_wraps_the_shell(config: RuntimeConfig) -> None:
    launcher = ("env", "SANDBOX_WORKSPACE={workspace}")
    async with live_agent(config, "shell", "s1", launcher=launcher) as agent:
        obs = final(await run(agent, "echo $SANDBOX_WORKSPACE"))
        assert obs["content"] == f"{config.workspaces_dir / 's1'}\n"
        assert agent.runtime_info() is not None
        assert agent.runtime_info()["pid"] == agent.shell.pid


async def test_a_crash_inside_the_lifespan_ends_the_shell_before_it_propagates(
    config: RuntimeConfig,
) -> None:
    seen: list[int] = []
    with pytest.RaisesGroup(pytest.RaisesExc(RuntimeError, match="agent crashed"), flatten_subgroups=True):
        async with live_agent(config, "shell", "s1") as agent:
            await run(agent, "sleep 300 &")
            seen.extend(my_descendants())
            raise RuntimeError("agent crashed")
    assert len(seen) == 2
    assert my_descendants() == set()  # before anyone could restart the session


async def test_a_launcher_that_cannot_start_fails_the_lifespan(config: RuntimeConfig) -> None:
    with pytest.RaisesGroup(FileNotFoundError, allow_unwrapped=True, flatten_subgroups=True):
        async with live_agent(config, "shell", "s1", launcher=("/nonexistent/launcher",)):
            pytest.fail("entered a lifespan without a shell")


async def test_a_shell_killed_from_outside_is_replaced_at_the_next_command(config: RuntimeConfig) -> None:
    async with live_agent(config, "shell", "s1") as agent:
        await run(agent, "mkdir w; cd w")
        old = agent.shell
        os.kill(old.pid, 9)
        with trio.fail_after(10):
            await old._proc.wait()
        assert agent.runtime_info() is None
        obs = final(await run(agent, "pwd"))
        assert obs["content"] == f"{config.workspaces_dir / 's1' / 'w'}\n"
        assert obs["extras"]["metadata"]["pid"] not in (old.pid, -1)


async def test_delete_workspace_removes_only_that_session(config: RuntimeConfig) -> None:
    for sid in ("keep", "../gone"):
        async with live_agent(config, "shell", sid) as agent:
            await run(agent, "mkdir -p deep/er && touch deep/er/file")
    assert await delete_workspace(config, "../gone") is True
    assert await delete_workspace(config, "../gone") is False
    names = sorted(p.name for p in config.workspaces_dir.iterdir())
    assert names == ["keep"]
    assert runs_user_commands("shell") and not runs_user_commands("echo")
    assert not runs_user_commands("exec:python3 agent.py")


async def test_timeouts_default_and_are_capped(config: RuntimeConfig) -> None:
    async with live_agent(config, "shell", "s1", default_timeout=0.5, max_timeout=1.0) as agent:
        default = final(await run(agent, "sleep 30"))
        assert "timed out after 0.5 seconds" in default["extras"]["metadata"]["suffix"]
        capped = final(await run(agent, "sleep 30", timeout=10_000))
        assert "timed out after 1 seconds" in capped["extras"]["metadata"]["suffix"]
        assert capped["extras"]["metadata"]["exit_code"] != 0
        assert final(await run(agent, "echo fine", timeout="soon"))["content"] == "fine\n"
