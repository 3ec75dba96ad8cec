"""The configuration tree read from a TOML file, the environment and flags: precedence, every error path
(one line naming source, section and key), masking, and a lossless TOML round trip."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from actors.restart import RestartPolicy
from server.cli.serve_options import ServeOptions
from server.config import Config
from server.config_loading import ConfigError, Setting, load_config
from server.config_toml import MASK, as_dict, mask_url, to_toml


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "supervisor.toml"
    path.write_text(text)
    return path


def test_defaults_are_the_documented_ones() -> None:
    config = Config()
    assert (config.http.host, config.http.port) == ("127.0.0.1", 3000)
    assert config.supervisor.close_delay == 120.0 and config.supervisor.close_delay_jitter == 2.0
    assert config.supervisor.max_live_sessions == 10_000 and config.supervisor.shutdown_budget == 20.0
    assert config.store.resolved_url == "sqlite:///data/supervisor.db"
    assert config.cluster.lease_ttl == 10.0 and config.cluster.node_id.endswith(
        f"-{__import__('os').getpid()}"
    )
    assert (config.runtime.agent, config.admin.token) == ("echo", None)
    assert (config.logging.format, config.logging.level) == ("auto", "info")


def test_file_then_environment_then_flags(tmp_path: Path) -> None:
    path = write(tmp_path, '[http]\nport = 1001\nhost = "127.0.0.2"\n[supervisor]\nclose_delay = 5\n')
    env = {"SUPERVISOR_HTTP_PORT": "1002", "SUPERVISOR_SUPERVISOR_CLOSE_DELAY_JITTER": "0.5"}
    flags = [Setting("http", ("port",), 1003, "--port")]
    assert load_config(path).http.port == 1001
    assert load_config(path, env).http.port == 1002
    full = load_config(path, env, flags)
    assert full.http.port == 1003
    assert full.http.host == "127.0.0.2"  # from the file: nothing later set it
    assert (full.supervisor.close_delay, full.supervisor.close_delay_jitter) == (5.0, 0.5)
    assert full.http.backlog == Config().http.backlog  # untouched keys keep their defaults


def test_the_cli_options_are_the_last_layer(tmp_path: Path) -> None:
    path = write(
        tmp_path, '[supervisor]\nclose_delay = 5\nclose_delay_jitter = 1\n[logging]\nlevel = "debug"\n'
    )
    options = ServeOptions(
        config=path, close_delay="never", close_delay_jitter=0.0, api_key="k1", cors_allowed_origins=["*"]
    )
    config = options.load({"SUPERVISOR_LOGGING_LEVEL": "warning"})
    assert config.supervisor.close_delay is None
    assert config.supervisor.close_delay_jitter == 0.0  # settable from the command line now
    assert config.logging.level == "warning"
    assert config.gateway.api_keys == {"k1": "default"}
    assert config.engineio.cors_allowed_origins == "*"


def test_nested_restart_policy_from_file_and_environment(tmp_path: Path) -> None:
    path = write(tmp_path, '[supervisor.restart]\npolicy = "permanent"\nintensity = 7\n')
    config = load_config(path, {"SUPERVISOR_SUPERVISOR_RESTART_PERIOD": "30"})
    restart = config.supervisor.restart
    assert (restart.policy, restart.intensity, restart.period) == (RestartPolicy.PERMANENT, 7, 30.0)


def test_environment_value_syntax_and_compatible_names() -> None:
    env = {
        "SUPERVISOR_API_KEY": "legacy-key",
        "SUPERVISOR_ADMIN_TOKEN": "tok",
        "SUPERVISOR_ENGINEIO_TRANSPORTS": "websocket",
        "SUPERVISOR_ENGINEIO_ALLOW_UPGRADES": "off",
        "SUPERVISOR_ENGINEIO_CORS_ALLOWED_ORIGINS": "https://a.example,https://b.example",
        "SUPERVISOR_SUPERVISOR_MAX_SESSIONS_PER_USER": "none",
        "SUPERVISOR_URL": "http://elsewhere:1",  # the operator commands' option: not the server's
        "SUPERVISOR_STORE_URL": "",  # empty: unset
    }
    config = load_config(env=env)
    assert config.gateway.api_keys == {"legacy-key": "default"}
    assert config.admin.token == "tok"
    assert config.engineio.transports == ("websocket",) and config.engineio.allow_upgrades is False
    assert config.engineio.cors_allowed_origins == ["https://a.example", "https://b.example"]
    assert config.supervisor.max_sessions_per_user is None
    assert config.store.url is None
    keys = load_config(env={"SUPERVISOR_GATEWAY_API_KEYS": "k1=alice,k2=bob"}).gateway.api_keys
    assert keys == {"k1": "alice", "k2": "bob"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[http]\nprot = 1\n", "[http] prot: unknown key (did you mean 'port'?)"),
        (
            "[nosuch]\nx = 1\n",
            "[nosuch]: unknown section (known: http, engineio, socketio, gateway, "
            "supervisor, store, cluster, runtime, admin, logging)",
        ),
        ("port = 1\n", "port: a key outside any section; did you mean [http] port?"),
        ('[http]\nport = "80"\n', "[http] port: expected an integer, got '80'"),
        ("[http]\nport = 70000\n", "[http] port: must be between 0 and 65535, got 70000"),
        ("[engineio]\nping_interval = 0\n", "[engineio] ping_interval: must be > 0 seconds, got 0.0"),
        ("[supervisor]\nclose_delay = -1\n", "[supervisor] close_delay: must be >= 0 or None"),
        (
            '[supervisor]\nclose_delay = "soon"\n',
            "[supervisor] close_delay: expected a number or 'none', got 'soon'",
        ),
        (
            '[supervisor.restart]\npolicy = "sometimes"\n',
            "[supervisor.restart] policy: expected one of permanent, transient, temporary, got 'sometimes'",
        ),
        (
            "[supervisor.restart]\nbogus = 1\n",
            "[supervisor.restart] bogus: unknown key (known: policy, "
            "intensity, period, backoff_initial, backoff_factor, backoff_max)",
        ),
        (
            '[logging]\nlevel = "loud"\n',
            "[logging] level: expected one of debug, info, warning, error, got 'loud'",
        ),
        ("[cluster]\nlease_ttl = 0\n", "[cluster] lease_ttl: must be > 0 seconds"),
        (
            '[cluster]\nnode_id = "a b"\n',
            "[cluster] node_id: must be 1-128 letters, digits or ._:-, starting with a letter or digit",
        ),
        (
            '[runtime]\nagent = "not an import path"\n',
            "[runtime] agent: must be 'echo', 'none', 'shell', 'exec:COMMAND ARGS' or an import path "
            "'module:Class'",
        ),
        (
            '[gateway]\nallow_unauthenticated_public = "yes"\n',
            "[gateway] allow_unauthenticated_public: expected true or false, got 'yes'",
        ),
        ("[admin]\ntoken = 12345\n", "[admin] token: expected a string or 'none'"),  # never echoes a secret
        ("[http\n", None),
    ],
)
def test_file_errors_are_one_line_naming_file_section_and_key(
    tmp_path: Path, text: str, message: str | None
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    line = str(caught.value)
    assert "\n" not in line
    if message is None:
        assert line.startswith(f"{path}: not valid TOML: ")
    else:
        assert line == f"{path}: {message}"


def test_environment_errors_name_the_variable() -> None:
    cases = {
        "SUPERVISOR_HTTP_PROT": "SUPERVISOR_HTTP_PROT: [http] prot: unknown key (did you mean 'port'?)",
        "SUPERVISOR_HTTP_PORT": "SUPERVISOR_HTTP_PORT: [http] port: expected an integer, got 'x'",
        "SUPERVISOR_SUPERVISOR_DRAIN_BATCH": "SUPERVISOR_SUPERVISOR_DRAIN_BATCH: [supervisor] drain_batch: "
        "expected an integer, got 'x'",
        "SUPERVISOR_LOGGING_FORMAT": "SUPERVISOR_LOGGING_FORMAT: [logging] format: "
        "expected one of auto, json, console, got 'x'",
    }
    for name, message in cases.items():
        with pytest.raises(ConfigError) as caught:
            load_config(env={name: "x"})
        assert str(caught.value) == message


def test_a_missing_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^.*nope\.toml: cannot read the file: No such file or directory$"):
        load_config(tmp_path / "nope.toml")


def test_secrets_are_masked_everywhere_they_are_shown() -> None:
    config = load_config(
        env={"SUPERVISOR_ADMIN_TOKEN": "admin-secret", "SUPERVISOR_API_KEY": "client-secret"}
    )
    shown = to_toml(config)
    assert "admin-secret" not in shown and "client-secret" not in shown
    parsed = tomllib.loads(shown)
    assert parsed["admin"]["token"] == MASK
    assert parsed["gateway"]["api_keys"] == {f"{MASK}-1": "default"}
    data = as_dict(config)
    assert data["admin"]["token"] == MASK and "client-secret" not in str(data)
    assert mask_url("redis://user:pw@example.com:6379/0") == f"redis://user:{MASK}@example.com:6379/0"
    assert mask_url("sqlite:///x.db") == "sqlite:///x.db"


def test_toml_written_unmasked_reads_back_into_the_same_config(tmp_path: Path) -> None:
    env = {
        "SUPERVISOR_API_KEY": "k",
        "SUPERVISOR_ADMIN_TOKEN": "t",
        "SUPERVISOR_ENGINEIO_CORS_ALLOWED_ORIGINS": "https://a.example",
        "SUPERVISOR_SUPERVISOR_CLOSE_DELAY": "never",
        "SUPERVISOR_STORE_URL": "memory://",
    }
    config = load_config(env=env)
    again = load_config(write(tmp_path, to_toml(config, mask=False)))
    assert again == config
    assert load_config(write(tmp_path, to_toml(Config(), mask=False))) == Config(cluster=again.cluster)
