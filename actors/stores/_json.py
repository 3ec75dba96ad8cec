"""The canonical JSON encoding every store persists (the one ``StoredEvent.create`` uses).

Owns: ``dumps``. Knows nothing else.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["dumps"]


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
