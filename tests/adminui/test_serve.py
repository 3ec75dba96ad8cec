"""``supervisor serve --admin-ui`` for real: a subprocess, python-socketio's client on /admin, and the
``[admin.ui]`` table loaded from flags, TOML and the environment like every key."""

from __future__ import annotations

from pathlib import Path

import bcrypt
import pytest
import socketio

from server.config_loading import load_config
from tests.adminui.support import TOKEN, Admin, login_refused
from tests.gateway.server_process import ServerProcess

GOOD = {"username": "admin", "password": TOKEN}


def test_serve_admin_ui_logs_in_with_the_admin_token(tmp_path: Path) -> None:
    with ServerProcess(tmp_path, "--admin-ui", "--admin-token", TOKEN) as server:
        assert login_refused(server.url, {"username": "admin", "password": "nope"}) == "invalid credentials"
        admin = Admin(server.url, GOOD)
        admin.connect()
        (config,) = admin.wait_for("config")
        (sockets,) = admin.wait_for("all_sockets")  # development mode is the default
        admin.wait_for("session")
        admin.close()
    assert {"ALL_EVENTS", "AGGREGATED_EVENTS", "DISCONNECT"} <= set(config["supportedFeatures"])
    assert isinstance(sockets, list)


def test_serve_without_the_flag_refuses_the_admin_namespace(tmp_path: Path) -> None:
    with ServerProcess(tmp_path, "--admin-token", TOKEN) as server:
        admin = Admin(server.url, GOOD)
        with pytest.raises(socketio.exceptions.ConnectionError):
            admin.connect()
        admin.client.disconnect()
        refused = admin.named("connect_error")
    assert refused and "invalid credentials" not in str(refused)  # no such namespace, not a login


def test_serve_admin_ui_from_a_toml_file_production_readonly_bcrypt(tmp_path: Path) -> None:
    hashed = bcrypt.hashpw(b"ui-pass", bcrypt.gensalt(rounds=4)).decode()
    config = tmp_path / "supervisor.toml"
    config.write_text(f'[admin.ui]\nenabled = true\nmode = "production"\nreadonly = true\n'
                      f'password_hash = "{hashed}"\n')
    with ServerProcess(tmp_path, "--config", str(config), "--admin-token", TOKEN) as server:
        assert login_refused(server.url, GOOD) == "invalid credentials"  # the hash replaces the token
        admin = Admin(server.url, {"username": "admin", "password": "ui-pass"})
        admin.connect()
        (features,) = admin.wait_for("config")
        admin.wait_for("server_stats")
        admin.close()
        names = [e for e, _ in admin.events]
    assert features == {"supportedFeatures": ["AGGREGATED_EVENTS"]}
    assert "all_sockets" not in names


def test_admin_ui_keys_from_the_environment_and_flags(tmp_path: Path) -> None:
    from server.cli.serve_options import ServeOptions

    env = {"SUPERVISOR_ADMIN_UI_ENABLED": "yes", "SUPERVISOR_ADMIN_UI_MODE": "production"}
    config = load_config(None, env, [])
    assert config.admin.ui.enabled and config.admin.ui.mode == "production"
    flags = ServeOptions(admin_ui=True, admin_ui_readonly=True, admin_ui_mode="development")
    flagged = flags.load(env)
    assert flagged.admin.ui.enabled and flagged.admin.ui.readonly and flagged.admin.ui.mode == "development"
    assert not load_config(None, {}, []).admin.ui.enabled  # off unless asked for
    with pytest.raises(ValueError, match="mode"):
        ServeOptions(admin_ui_mode="staging").load({})
    with pytest.raises(ValueError, match="bcrypt"):
        load_config(None, {"SUPERVISOR_ADMIN_UI_PASSWORD_HASH": "plain"}, [])


def test_config_show_masks_the_password_hash() -> None:
    from server.config_toml import as_dict

    hashed = bcrypt.hashpw(b"x", bcrypt.gensalt(rounds=4)).decode()
    config = load_config(None, {"SUPERVISOR_ADMIN_UI_PASSWORD_HASH": hashed}, [])
    shown = as_dict(config, mask=True)["admin"]["ui"]
    assert shown["password_hash"] != hashed and shown["enabled"] is False
