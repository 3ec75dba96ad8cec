"""The real ``supervisor`` CLI (``python -m server.cli``) against a real ``supervisor serve`` subprocess."""

from __future__ import annotations

import signal
import stat
import subprocess

from tests.cli.conftest import (
    LineReader,
    Server,
    clean_env,
    cli_command,
    free_port,
    post_message,
    run_cli,
    run_many,
)

EXIT_ERROR, EXIT_UNREACHABLE, EXIT_AUTH, EXIT_INTERRUPTED = 1, 3, 4, 130


def send(server: Server, session_id: str, text: str, *extra: str) -> list[dict[str, object]]:
    result = run_cli(server, "send", session_id, text, "--json", *extra)
    assert result.code == 0, result.stderr
    return result.json_lines()


def test_serve_writes_a_private_token_file_and_says_where(server: Server) -> None:
    path = server.data_dir / "admin-token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert server.token
    assert any(line.startswith("Admin token:") and "admin-token" in line for line in server.banner)
    assert server.token not in "\n".join(server.banner)


def test_help_lists_every_operator_command(server: Server) -> None:
    done = subprocess.run(cli_command("--help"), capture_output=True, text=True, env=clean_env(), timeout=60)
    assert done.returncode == 0
    for command in ("serve", "status", "sessions", "events", "send"):
        assert command in done.stdout


def test_send_prints_the_message_and_the_agent_reply(server: Server) -> None:
    events = send(server, "send-1", "hello")
    assert [(e["source"], e["message"]) for e in events] == [("user", "hello"), ("agent", "echo: hello")]
    again = send(server, "send-1", "again")
    assert [e["id"] for e in again] == [2, 3]  # only what follows the new message, not the history


def test_send_people_output_is_one_line_per_event(server: Server) -> None:
    result = run_cli(server, "send", "send-2", "hi there")
    assert result.code == 0, result.stderr
    assert result.stdout.splitlines() == ["#0 user   hi there", "#1 agent  echo: hi there"]


def test_status_as_json_and_as_a_table(server: Server) -> None:
    post_message(server, "status-1", "x")
    result = run_cli(server, "status", "--json")
    assert result.code == 0, result.stderr
    body = result.json()
    assert body["status"] == "ok"
    assert body["live_sessions"] >= 1
    assert body["rehydrations"] >= 1
    assert set(body["sessions_by_state"]) >= {"active", "idle", "passivated"}
    table = run_cli(server, "status")
    assert table.code == 0
    assert "uptime" in table.stdout and "live sessions" in table.stdout


def test_sessions_list_show_and_state_filter(server: Server) -> None:
    post_message(server, "list-1", "x")
    body = run_cli(server, "sessions", "list", "--json", "--all").json()
    listed = {s["session_id"]: s for s in body["sessions"]}
    assert listed["list-1"]["state"] == "idle"
    assert listed["list-1"]["event_count"] == 2
    idle = run_cli(server, "sessions", "list", "--state", "idle", "--json", "--all").json()
    assert all(s["state"] == "idle" for s in idle["sessions"])
    assert "list-1" in {s["session_id"] for s in idle["sessions"]}
    table = run_cli(server, "sessions", "list", "--all")
    assert table.code == 0
    assert "list-1" in table.stdout and "STATE" in table.stdout
    show = run_cli(server, "sessions", "show", "list-1", "--json")
    assert show.code == 0, show.stderr
    assert show.json()["last_event_id"] == 1
    people = run_cli(server, "sessions", "show", "list-1")
    assert "mailbox depth" in people.stdout


def test_sessions_list_pages_with_after(server: Server) -> None:
    for sid in ("page-a", "page-b", "page-c"):
        post_message(server, sid, "x")
    first = run_cli(server, "sessions", "list", "--json", "--after", "page-", "--limit", "2").json()
    assert [s["session_id"] for s in first["sessions"]] == ["page-a", "page-b"]
    cursor = first["next_after"]
    rest = run_cli(server, "sessions", "list", "--json", "--after", cursor, "--limit", "1").json()
    assert [s["session_id"] for s in rest["sessions"]] == ["page-c"]


def test_passivate_and_kill_keep_the_log(server: Server) -> None:
    post_message(server, "pk-1", "one")
    result = run_cli(server, "sessions", "passivate", "pk-1", "--json")
    assert result.code == 0, result.stderr
    assert result.json() == {"session_id": "pk-1", "was_live": True, "state": "passivated"}
    shown = run_cli(server, "sessions", "show", "pk-1", "--json").json()
    assert shown["state"] == "passivated" and shown["live"] is False
    post_message(server, "pk-1", "two")  # rehydrates
    killed = run_cli(server, "sessions", "kill", "pk-1")
    assert killed.code == 0, killed.stderr
    assert killed.stdout.strip() == "pk-1: killed"
    events = run_cli(server, "events", "pk-1", "--json").json_lines()
    assert [e["message"] for e in events] == ["one", "echo: one", "two", "echo: two"]


def test_passivate_all(server: Server) -> None:
    post_message(server, "all-1", "x")
    post_message(server, "all-2", "x")
    result = run_cli(server, "sessions", "passivate", "--all", "--json")
    assert result.code == 0, result.stderr
    assert {"all-1", "all-2"} <= set(result.json()["passivated"])
    live = run_cli(server, "sessions", "list", "--state", "active,idle", "--json").json()
    assert live["sessions"] == []


def test_events_after_and_limit(server: Server) -> None:
    post_message(server, "ev-1", "a")
    post_message(server, "ev-1", "b")
    after = run_cli(server, "events", "ev-1", "--after", "1", "--json").json_lines()
    assert [e["id"] for e in after] == [2, 3]
    limited = run_cli(server, "events", "ev-1", "--limit", "3", "--json").json_lines()
    assert [e["id"] for e in limited] == [0, 1, 2]
    people = run_cli(server, "events", "ev-1", "--after", "2")
    assert people.stdout.splitlines() == ["#3 agent  echo: b"]


def test_events_follow_prints_new_events_until_interrupted(server: Server) -> None:
    post_message(server, "follow-1", "before")
    proc = subprocess.Popen(
        cli_command("events", "follow-1", "--follow", "--interval", "0.1", "--json", "--url", server.url),
        cwd=server.workdir, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        reader = LineReader(proc)
        assert '"before"' in reader.readline()
        assert '"echo: before"' in reader.readline()
        post_message(server, "follow-1", "after")
        assert '"after"' in reader.readline()
        assert '"echo: after"' in reader.readline()
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=20)
        assert proc.stderr is not None
        stderr = proc.stderr.read().decode()
    assert code == EXIT_INTERRUPTED, stderr
    assert "Traceback" not in stderr


def test_send_follow_keeps_printing_other_clients_events(server: Server) -> None:
    proc = subprocess.Popen(
        cli_command("send", "follow-2", "first", "--follow", "--json", "--url", server.url),
        cwd=server.workdir, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        reader = LineReader(proc)
        lines = [reader.readline() for _ in range(3)]  # STATUS$READY, own message, echo (status first)
        assert any('"STATUS$READY"' in line for line in lines)
        assert any('"echo: first"' in line for line in lines)
        post_message(server, "follow-2", "from elsewhere")
        assert '"from elsewhere"' in reader.readline()
        assert '"echo: from elsewhere"' in reader.readline()
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=20)
    assert code == EXIT_INTERRUPTED


def test_token_comes_from_flag_env_or_the_default_data_dir(server: Server) -> None:
    # run_cli's cwd holds ./data/admin-token: found with no option at all
    result = run_cli(server, "status")
    assert result.code == 0, result.stderr
    elsewhere = server.workdir / "elsewhere"
    elsewhere.mkdir(exist_ok=True)
    result = run_cli(server, "status", "--data-dir", str(elsewhere))
    assert result.code == EXIT_AUTH, result.stderr
    result = run_cli(server, "status", "--data-dir", str(elsewhere), "--token", server.token)
    assert result.code == 0, result.stderr
    env = clean_env(SUPERVISOR_ADMIN_TOKEN=server.token)
    result = run_cli(server, "status", "--data-dir", str(elsewhere), env=env)
    assert result.code == 0, result.stderr


def test_wrong_token_is_a_one_line_error(server: Server) -> None:
    commands = [["status"], ["sessions", "passivate", "--all"]]  # one client path: two are enough
    results = run_many(server, [[*c, "--token", "wrong"] for c in commands])
    for args, result in zip(commands, results, strict=True):
        assert result.code == EXIT_AUTH, args
        assert result.stdout == ""
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: the server refused the admin token"), lines


def test_missing_token_is_a_one_line_error(server: Server) -> None:
    result = run_cli(server, "status", "--data-dir", str(server.workdir / "none"))
    assert result.code == EXIT_AUTH
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: no admin token")


def test_down_server_is_a_one_line_error(server: Server) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    commands = [["events", "x", "--follow"], ["send", "x", "hello"]]  # the admin and the Socket.IO client
    for args, result in zip(commands, run_many(server, commands, url=down), strict=True):
        assert result.code == EXIT_UNREACHABLE, (args, result.stderr)
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: cannot reach the server"), lines
        assert result.stdout == ""


def test_unknown_session_is_an_error(server: Server) -> None:
    commands = [["sessions", "show", "nope"], ["events", "nope"]]
    for args, result in zip(commands, run_many(server, commands), strict=True):
        assert result.code == EXIT_ERROR, args
        assert result.stderr.strip() == "error: no session nope"


def test_a_refused_connection_is_reported(server: Server) -> None:
    result = run_cli(server, "send", "bad id with spaces", "hello")
    assert result.code == EXIT_AUTH
    assert result.stderr.startswith("error: the server refused the connection")
