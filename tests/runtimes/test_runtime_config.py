"""The one ``[runtime]`` section: loadable from TOML, environment and flags; completed by the server (the
workspaces under the data dir, a turn watchdog and a shutdown budget fitted to the shell); the refusal of
command-running agents on a public host without client authentication."""

from __future__ import annotations

from pathlib import Path

import pytest

from actors.runtimes import RuntimeConfig, ShellAgentFactory
from server.config import Config
from server.config_loading import ConfigError, load_config
from server.runtimes import build_agent_factory, exposure_error, with_runtime_defaults


def test_runtime_section_from_toml_env_and_flags(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text('[runtime]\nagent = "shell"\nlauncher = ["bwrap", "{workspace}"]\n'
                    'env = [["LANG", "C.UTF-8"]]\nmax_timeout = 60\n')
    config = load_config(path, {"SUPERVISOR_RUNTIME_DEFAULT_TIMEOUT": "30"}, {})
    assert isinstance(config.runtime, RuntimeConfig)
    assert config.runtime.launcher == ("bwrap", "{workspace}")
    assert config.runtime.env == (("LANG", "C.UTF-8"),)
    assert (config.runtime.max_timeout, config.runtime.default_timeout) == (60.0, 30.0)
    with pytest.raises(ConfigError, match="agent"):
        load_config(None, {"SUPERVISOR_RUNTIME_AGENT": "exec:"}, {})


def test_server_fills_in_workspaces_watchdog_and_budget(tmp_path: Path) -> None:
    config = Config().override(store={"data_dir": tmp_path}, runtime={"agent": "shell"},
                               supervisor={"turn_watchdog": 60.0, "shutdown_budget": 1.0})
    done = with_runtime_defaults(config)
    assert done.runtime.workspaces == tmp_path / "workspaces"
    assert done.supervisor.turn_watchdog == done.runtime.turn_time_limit > done.runtime.max_timeout
    assert done.supervisor.shutdown_budget >= done.runtime.stop_grace
    assert isinstance(build_agent_factory(done), ShellAgentFactory)
    echo = with_runtime_defaults(Config().override(supervisor={"turn_watchdog": 60.0}))
    assert echo.supervisor.turn_watchdog == 60.0  # other agents keep their settings


def test_public_host_needs_auth_for_shell_and_exec() -> None:
    public = Config().override(http={"host": "0.0.0.0"}, runtime={"agent": "shell"})
    error = exposure_error(public)
    assert error is not None and "\n" not in error and "--api-key" in error
    assert exposure_error(public.override(runtime={"agent": "exec:python3 a.py"})) is not None
    assert exposure_error(public.override(gateway={"api_keys": {"k": "alice"}})) is None
    assert exposure_error(public.override(runtime={"agent": "echo"})) is None
    assert exposure_error(Config().override(runtime={"agent": "shell"})) is None  # loopback
