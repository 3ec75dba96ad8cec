"""Fixtures for client tests: the python-socketio reference server, run as a subprocess."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.servers import PySioServer


@pytest.fixture(scope="session")
def pysio() -> Iterator[PySioServer]:
    """One shared reference server (default heartbeat) for tests that do not stop or freeze it."""
    with PySioServer() as server:
        yield server


@pytest.fixture
def own_pysio() -> Iterator[PySioServer]:
    """A private reference server with a short heartbeat (300 ms + 200 ms), free to restart or freeze."""
    with PySioServer(ping_interval=0.3, ping_timeout=0.2) as server:
        yield server
