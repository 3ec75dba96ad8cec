"""A tiny ``--auth-hook`` validator for the gateway tests: fixed tokens, each mapped to a user.

Owns: ``TOKENS`` and ``validate``. Loaded by ``supervisor serve --auth-hook tests.gateway.auth_hook:validate``
in a subprocess (the repository root is on its PYTHONPATH). Knows nothing of the server.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

TOKENS = {"alice-token": "alice", "bob-token": "bob"}


def validate(token: str | None, environ: Mapping[str, Any]) -> str | None:
    """The user id ``token`` belongs to, or None (refused)."""
    return TOKENS.get(token or "")
