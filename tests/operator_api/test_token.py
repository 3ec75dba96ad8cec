"""The admin token: bearer parsing, constant-time check, the token file (mode 0600, reused)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from server.operator_api.token import check_bearer, ensure_token_file, read_token_file, token_path


def test_bearer_accepts_the_token_with_any_scheme_case() -> None:
    assert check_bearer("Bearer s3cret", "s3cret")
    assert check_bearer("bearer s3cret", "s3cret")
    assert check_bearer("  BEARER   s3cret ", "s3cret")


def test_bearer_refuses_wrong_missing_or_malformed_credentials() -> None:
    assert not check_bearer(None, "s3cret")
    assert not check_bearer("", "s3cret")
    assert not check_bearer("Bearer wrong", "s3cret")
    assert not check_bearer("Bearer s3cret-and-more", "s3cret")
    assert not check_bearer("Basic s3cret", "s3cret")
    assert not check_bearer("s3cret", "s3cret")
    assert not check_bearer("Bearer ", "")


def test_generated_token_file_is_private_and_reused(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    token, path = ensure_token_file(data_dir)
    assert path == token_path(data_dir)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(token) >= 32
    assert read_token_file(path) == token
    again, _ = ensure_token_file(data_dir)
    assert again == token
    assert [p.name for p in data_dir.iterdir()] == ["admin-token"]  # no temporary file left behind


def test_a_token_file_readable_by_others_is_tightened(tmp_path: Path) -> None:
    path = token_path(tmp_path)
    path.write_text("mine\n")
    os.chmod(path, 0o644)
    token, _ = ensure_token_file(tmp_path)
    assert token == "mine"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_missing_or_empty_token_file_reads_as_none(tmp_path: Path) -> None:
    assert read_token_file(tmp_path / "absent") is None
    empty = tmp_path / "empty"
    empty.write_text("  \n")
    assert read_token_file(empty) is None
