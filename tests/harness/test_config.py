"""The harness builds the same ``Config`` as ``supervisor serve``, and every layer gets its own section
object as it is (nothing copied field by field or renamed on the way)."""

from __future__ import annotations

from pathlib import Path

import pytest

from actors.restart import RestartConfig
from server.config_loading import load_config
from server.testing import harness_config
from server.testing.plugin import MakeSupervisor


async def test_each_layer_receives_its_section_unchanged(make_supervisor: MakeSupervisor) -> None:
    server = await make_supervisor(
        max_action_bytes=1000, ping_interval=3.0, replay_page_size=9, max_live_sessions=5,
        restart=RestartConfig(intensity=1), connect_timeout=7.0,
    )
    app = server.app
    config = app.config
    assert app.supervisor.config is config.supervisor
    assert app.gateway.config is config.gateway
    assert app.http is not None and app.http.config == config.http
    assert (config.gateway.max_action_bytes, config.engineio.ping_interval) == (1000, 3.0)
    assert (config.supervisor.replay_page_size, config.supervisor.max_live_sessions) == (9, 5)
    assert config.supervisor.restart.intensity == 1 and config.socketio.connect_timeout == 7.0
    assert config.supervisor.close_delay_jitter == 0.0  # the harness's default: exact deadlines
    assert (config.http.host, config.http.port) == ("127.0.0.1", 0)


async def test_a_config_loaded_from_toml_runs_in_the_harness(make_supervisor: MakeSupervisor,
                                                             tmp_path: Path) -> None:
    path = tmp_path / "supervisor.toml"
    path.write_text("[http]\nport = 3999\n[supervisor]\nclose_delay = 5\nclose_delay_jitter = 1.5\n"
                    "[gateway]\nmax_action_bytes = 2048\n")
    server = await make_supervisor(config=load_config(path), turn_watchdog=30)
    config = server.app.config
    assert (config.supervisor.close_delay, config.supervisor.close_delay_jitter) == (5.0, 1.5)  # file kept
    assert config.supervisor.turn_watchdog == 30
    assert config.gateway.max_action_bytes == 2048
    assert config.http.port == 0  # the harness always picks a free port
    client = await server.connect("from-toml")
    small = await client.call("oh_user_action", {"action": "message", "args": {"content": "x" * 1000}})
    assert small == {"id": 0}
    big = await client.call("oh_user_action", {"action": "message", "args": {"content": "x" * 3000}})
    assert big["msg_id"] == "ACTION$TOO_LARGE"  # the file's limit, not the default 256 KiB


def test_unknown_or_reserved_options_are_refused() -> None:
    with pytest.raises(TypeError, match="unknown supervisor option"):
        harness_config(max_live_actors=3)
    with pytest.raises(TypeError, match="chosen by the harness"):
        harness_config(port=80)
