"""``supervisor serve --config FILE`` and ``supervisor config show`` as real processes: the precedence of
file < environment < flags, exit code 2 with one line for every kind of bad configuration, masking, and a
server started from a TOML file answering with the configured values."""

from __future__ import annotations

import json
import signal
import subprocess
import tomllib
import urllib.request
from pathlib import Path
from typing import Any

from tests.cli.conftest import (
    CLI_TIMEOUT,
    LISTENING,
    STARTUP_TIMEOUT,
    LineReader,
    clean_env,
    cli_command,
    free_port,
)

EXIT_USAGE = 2


def run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cli_command(*args), cwd=cwd, env=clean_env(**env), capture_output=True, text=True, timeout=CLI_TIMEOUT
    )


def test_config_show_applies_file_then_environment_then_flags(tmp_path: Path) -> None:
    path = tmp_path / "supervisor.toml"
    path.write_text(
        '[http]\nport = 4001\nhost = "127.0.0.1"\n[supervisor]\nclose_delay = 30\n'
        'max_live_sessions = 50\n[supervisor.restart]\nintensity = 9\n[logging]\nformat = "json"\n'
    )
    done = run(
        ["config", "show", "--config", str(path), "--port", "4003", "--close-delay", "never"],
        tmp_path,
        SUPERVISOR_HTTP_PORT="4002",
        SUPERVISOR_SUPERVISOR_MAX_LIVE_SESSIONS="60",
        SUPERVISOR_LOGGING_FORMAT="console",
    )
    assert done.returncode == 0, done.stderr
    shown = tomllib.loads(done.stdout)
    assert shown["http"]["port"] == 4003  # flag over env over file
    assert shown["supervisor"]["max_live_sessions"] == 60  # env over file
    assert shown["logging"]["format"] == "console"
    assert shown["supervisor"]["close_delay"] == "none"  # --close-delay never
    assert shown["supervisor"]["restart"]["intensity"] == 9  # file, nested section
    assert shown["store"]["data_dir"] == "data" and shown["runtime"]["agent"] == "echo"  # defaults
    assert set(shown) == {
        "http",
        "engineio",
        "socketio",
        "gateway",
        "supervisor",
        "store",
        "cluster",
        "runtime",
        "admin",
        "logging",
    }


def test_config_show_masks_secrets(tmp_path: Path) -> None:
    path = tmp_path / "supervisor.toml"
    path.write_text('[gateway.api_keys]\n"file-key-secret" = "alice"\n')
    done = run(
        ["config", "show", "--config", str(path), "--admin-token", "flag-token-secret"],
        tmp_path,
        SUPERVISOR_API_KEY="env-key-secret",
    )
    assert done.returncode == 0, done.stderr
    assert "secret" not in done.stdout
    shown = tomllib.loads(done.stdout)
    assert shown["admin"]["token"] == "<masked>"
    assert shown["gateway"]["api_keys"] == {
        "<masked>-1": "default"
    }  # the environment's key replaced the file's


def test_every_bad_configuration_is_one_line_and_exit_2(tmp_path: Path) -> None:
    files = {
        "unknown.toml": "[supervisor]\nmax_live_actors = 3\n",
        "type.toml": '[supervisor]\nclose_delay_jitter = "lots"\n',
        "range.toml": "[http]\nport = -1\n",
        "enum.toml": '[logging]\nformat = "xml"\n',
        "section.toml": "[sessions]\nx = 1\n",
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    cases: list[tuple[list[str], dict[str, str], str]] = [
        (
            ["--config", "unknown.toml"],
            {},
            "error: unknown.toml: [supervisor] max_live_actors: unknown key "
            "(did you mean 'max_live_sessions'?)",
        ),
        (
            ["--config", "type.toml"],
            {},
            "error: type.toml: [supervisor] close_delay_jitter: expected a number, got 'lots'",
        ),
        (
            ["--config", "range.toml"],
            {},
            "error: range.toml: [http] port: must be between 0 and 65535, got -1",
        ),
        (
            ["--config", "enum.toml"],
            {},
            "error: enum.toml: [logging] format: expected one of auto, json, console, got 'xml'",
        ),
        (
            ["--config", "section.toml"],
            {},
            "error: section.toml: [sessions]: unknown section (known: http, "
            "engineio, socketio, gateway, supervisor, store, cluster, runtime, "
            "admin, logging)",
        ),
        (
            [],
            {"SUPERVISOR_SUPERVISOR_MAX_LIVE": "3"},
            "error: SUPERVISOR_SUPERVISOR_MAX_LIVE: [supervisor] max_live: unknown key (did you mean "
            "'max_live_sessions'?)",
        ),
        (
            [],
            {"SUPERVISOR_HTTP_PORT": "eighty"},
            "error: SUPERVISOR_HTTP_PORT: [http] port: expected an integer, got 'eighty'",
        ),
        (
            [],
            {"SUPERVISOR_SUPERVISOR_RESTART_POLICY": "always"},
            "error: SUPERVISOR_SUPERVISOR_RESTART_POLICY: [supervisor.restart] policy: "
            "expected one of permanent, transient, temporary, got 'always'",
        ),
        (["--close-delay", "-5"], {}, "error: --close-delay: [supervisor] close_delay: must be >= 0 or None"),
        (
            ["--config", "missing.toml"],
            {},
            "error: missing.toml: cannot read the file: No such file or directory",
        ),
    ]
    runs = [
        (command, args, env, line)
        for args, env, line in cases
        for command in (["serve"], ["config", "show"])
        if command == ["serve"] or args[:1] == ["--config"]
    ]
    procs = [
        subprocess.Popen(
            cli_command(*command, *args),
            cwd=tmp_path,
            env=clean_env(**env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for command, args, env, _ in runs
    ]
    expected = [line for *_, line in runs]
    for proc, line in zip(procs, expected, strict=True):
        stdout, stderr = proc.communicate(timeout=CLI_TIMEOUT)
        assert proc.returncode == EXIT_USAGE, (proc.args, stderr)
        assert stderr.splitlines() == [line], proc.args
        assert stdout == ""
    assert not (tmp_path / "data").exists()  # serve stopped before touching anything


def _get(url: str, token: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as response:
        return json.loads(response.read())


def test_serve_runs_from_a_toml_file_with_its_values(tmp_path: Path) -> None:
    port = free_port()
    path = tmp_path / "supervisor.toml"
    path.write_text(f"""
[http]
port = {port}

[engineio]
ping_interval = 11.5

[gateway]
max_action_bytes = 4096

[supervisor]
close_delay = 7.5
close_delay_jitter = 0.25
shutdown_budget = 3

[supervisor.restart]
policy = "temporary"

[store]
url = "sqlite:///{tmp_path / "from-file.db"}"
data_dir = "{tmp_path / "state"}"

[cluster]
node_id = "node-a"

[runtime]
agent = "none"

[admin]
token = "file-admin-token"

[logging]
format = "json"
""")
    proc = subprocess.Popen(
        cli_command("serve", "--config", str(path), "--close-delay-jitter", "0.5"),
        cwd=tmp_path,
        env=clean_env(SUPERVISOR_SUPERVISOR_MAX_LIVE_SESSIONS="77"),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        reader = LineReader(proc)
        first = reader.readline(STARTUP_TIMEOUT)
        match = LISTENING.search(first)
        assert match, first
        url = match.group(1)
        assert url == f"http://127.0.0.1:{port}"
        store_line, token_line = reader.readline(), reader.readline()
        assert "from-file.db" in store_line
        assert token_line.startswith("Admin token: configured") and "file-admin-token" not in token_line
        assert _get(f"{url}/healthz")["status"] == "ok"
        shown = _get(f"{url}/admin/config", "file-admin-token")
        assert shown["http"]["port"] == port
        assert shown["engineio"]["ping_interval"] == 11.5
        assert shown["gateway"]["max_action_bytes"] == 4096
        assert shown["supervisor"]["close_delay"] == 7.5
        assert shown["supervisor"]["close_delay_jitter"] == 0.5  # the flag beat the file
        assert shown["supervisor"]["max_live_sessions"] == 77  # the environment beat the default
        assert shown["supervisor"]["shutdown_budget"] == 3.0
        assert shown["supervisor"]["restart"]["policy"] == "temporary"
        assert shown["cluster"] == {"node_id": "node-a", "lease_ttl": 10.0}
        assert shown["runtime"]["agent"] == "none"
        assert shown["admin"]["token"] == "<masked>"
        assert shown["logging"]["format"] == "json"
        assert not (tmp_path / "state" / "admin-token").exists()  # a configured token writes no file
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=30)
    assert code == 0
    assert (tmp_path / "from-file.db").exists()


def test_a_public_host_from_the_file_still_needs_client_authentication(tmp_path: Path) -> None:
    path = tmp_path / "supervisor.toml"
    path.write_text('[http]\nhost = "0.0.0.0"\nport = 0\n')
    done = run(["serve", "--config", str(path)], tmp_path)
    assert done.returncode == EXIT_USAGE
    assert done.stderr.splitlines() == [
        "error: refusing to listen on 0.0.0.0 without client authentication; pass --api-key (or "
        "SUPERVISOR_API_KEY), --auth-hook, or --allow-unauthenticated-public"
    ]
