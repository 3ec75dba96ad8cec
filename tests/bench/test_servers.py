"""The benchmark's server slots report "not available" with the reason instead of failing the run."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.servers import NotAvailable, ServerSpec, free_port, running


def test_a_missing_required_script_is_not_available(tmp_path: Path) -> None:
    spec = ServerSpec(
        "ours", "ours", "{python} {root}/scripts/no-such-server {port}", ("{root}/scripts/no-such-server",)
    )
    with pytest.raises(NotAvailable, match="scripts/no-such-server is missing"), running(spec, tmp_path, "t"):
        pass


def test_a_server_that_exits_at_start_is_not_available_with_its_last_words(tmp_path: Path) -> None:
    spec = ServerSpec("ours", "ours", "python3 -c \"import sys; print('cannot start'); sys.exit(3)\"")
    with (
        pytest.raises(NotAvailable, match=r"exited with code 3 at start: .*cannot start"),
        running(spec, tmp_path, "t", pin=False),
    ):
        pass
    assert (tmp_path / "ours-t.log").read_text().splitlines()[-1] == "cannot start"


def test_a_command_that_does_not_exist_is_not_available(tmp_path: Path) -> None:
    spec = ServerSpec("ours", "ours", "no-such-binary-for-bench {port}")
    with (
        pytest.raises(NotAvailable, match="cannot run no-such-binary-for-bench"),
        running(spec, tmp_path, "t"),
    ):
        pass


def test_free_port_is_a_bindable_loopback_port() -> None:
    port = free_port()
    assert 1024 < port < 65536
