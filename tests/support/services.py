"""Finding the Debian programs the tests start for real (redis-server, haproxy).

Owns: ``require_executable``: the program's path, or a skip naming the install command (a failure instead
under ``CI=true``, where a missing service is a broken setup, never a reason to skip).
"""

from __future__ import annotations

import os
import shutil

import pytest


def require_executable(name: str, install_hint: str, *also: str) -> str:
    """The path of ``name`` on PATH or at one of ``also``; otherwise skip (or fail with ``CI=true``)."""
    path = shutil.which(name) or next((p for p in also if os.path.exists(p)), None)
    if path is None:
        message = f"{name} is not installed: {install_hint}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path
