"""The redis-server fixture: never the default port, durable settings, and what happens without the binary."""

from __future__ import annotations

import shutil

import pytest

from tests.support import redis_server
from tests.support.redis_server import RedisServer, require_redis_server


def test_without_redis_server_tests_skip_with_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install -y redis-server"):
        require_redis_server()


def test_without_redis_server_ci_fails_instead_of_skipping(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="redis-server is not installed"):
        require_redis_server()


def test_the_server_runs_durable_on_its_own_port_and_directory() -> None:
    with RedisServer() as server:
        assert server.port != 6379
        for name, expected in (
            ("appendonly", b"yes"),
            ("appendfsync", b"always"),
            ("maxmemory-policy", b"noeviction"),
            ("dir", str(server.directory).encode()),
        ):
            assert server.command("CONFIG", "GET", name) == expected, name
        directory = server.directory
    assert not directory.exists()  # its temporary directory is removed
    assert redis_server.INSTALL_HINT.startswith("apt-get install")
