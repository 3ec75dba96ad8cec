"""docs/operations.md's configuration section says what the code does: its example file loads, its error
lines are the real ones, and its flag table lists every ``serve`` option with the key it sets."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import pytest

from server.cli.serve_options import FLAG_KEYS, ServeOptions
from server.config import SECTIONS
from server.config_loading import ConfigError, Setting, load_config

DOC = (Path(__file__).resolve().parents[2] / "docs" / "operations.md").read_text()
SECTION = DOC.split("## Configuration\n", 1)[1].split("\n## ", 1)[0]


def test_the_example_file_loads(tmp_path: Path) -> None:
    (example,) = re.findall(r"```toml\n(.*?)```", SECTION, flags=re.S)
    path = tmp_path / "supervisor.toml"
    path.write_text(example)
    config = load_config(path)
    assert config.http.host == "0.0.0.0"
    assert config.engineio.cors_allowed_origins == ["https://app.example.com"]
    assert config.gateway.api_keys == {"change-me-client-key": "alice"}
    assert config.supervisor.max_sessions_per_user is None
    assert config.store.url == "sqlite:////srv/supervisor/data/supervisor.db"
    assert (config.cluster.node_id, config.admin.token, config.logging.format) == ("node-a", None, "json")
    assert set(re.findall(r"^\[(\w+)", example, flags=re.M)) == set(SECTIONS)  # every section shown


def test_the_error_examples_are_the_real_messages(tmp_path: Path) -> None:
    block = SECTION.split("exit code 2:\n\n```\n", 1)[1].split("```", 1)[0]
    documented = block.strip().splitlines()
    path = tmp_path / "supervisor.toml"
    produced = []
    for text, env, flags in [
        ("[supervisor]\nmax_live_actor = 1\n", {}, []),
        ("[http]\nport = 70000\n", {}, []),
        ("", {"SUPERVISOR_SUPERVISOR_CLOSE_DELAY": "soon"}, []),
        ("", {}, [Setting("logging", ("level",), "loud", "--log-level")]),
    ]:
        path.write_text(text)
        with pytest.raises(ConfigError) as caught:
            load_config(path, env, flags)
        produced.append(f"error: {caught.value}".replace(str(path), "supervisor.toml"))
    assert produced == documented


def test_the_flag_table_lists_every_option_and_its_key() -> None:
    table = SECTION.split("### Flags", 1)[1]
    rows = {m[0]: m[1] for m in re.findall(r"^\| `(--[a-z-]+)[^|]*\| ([^|]*) \|", table, flags=re.M)}
    for f in fields(ServeOptions):
        flag = "--" + f.name.replace("_", "-")
        assert flag in rows or any(flag in row for row in re.findall(r"^\|[^|]*\|", table, flags=re.M)), flag
        if f.name in FLAG_KEYS and flag in rows:
            section, key = FLAG_KEYS[f.name]
            assert rows[flag].strip("`") in (f"[{section}] {key}", f"[{section}]"), (flag, rows[flag])
