"""Fixtures of the gateway's end-to-end tests: ``supervisor serve`` subprocesses shared per session/module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.gateway.server_process import ServerProcess

HOOK = "tests.gateway.auth_hook:validate"
ALICE = "alice-token"
BOB = "bob-token"


@pytest.fixture(scope="session")
def hook_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server for the tests that do not stop it: SQLite store, the echo agent, tokens checked by
    ``tests/gateway/auth_hook.py`` (alice-token -> alice, bob-token -> bob). Tests use distinct
    conversation ids, so they do not see each other."""
    with ServerProcess(tmp_path_factory.mktemp("hook-server"), "--auth-hook", HOOK) as server:
        yield server
