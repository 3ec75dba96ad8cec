"""Writing a configuration tree out: as TOML (``supervisor config show``) and as JSON-ready data
(``GET /admin/config``), secrets masked.

Owns: ``as_dict`` and ``to_toml``, and the masking of secrets (``server.config.SECRETS``: the admin token,
the client API keys; a password in the store URL). The TOML written unmasked reads back, through
``server.config_loading``, into the same ``Config`` (optional values that are unset are written
``"none"``). Knows nothing of where the configuration came from.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from server.config import SECRETS, SECTIONS, Config

__all__ = ["MASK", "as_dict", "mask_url", "to_toml"]

MASK = "<masked>"


def as_dict(config: Config, *, mask: bool = True) -> dict[str, Any]:
    """``{section: {key: value}}`` with plain JSON/TOML values (paths and enums as strings, tuples as
    lists); nested sections as nested dicts. ``mask``: secrets replaced by ``MASK``."""
    return {name: _section(name, getattr(config, name), mask) for name in SECTIONS}


def _section(name: str, section: Any, mask: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(section):
        value = getattr(section, f.name)
        if is_dataclass(value):
            out[f.name] = _section(f"{name}.{f.name}", value, mask)
            continue
        value = _plain(value)
        if mask and value and (name, f.name) in SECRETS:
            value = {f"{MASK}-{i}": user for i, user in enumerate(value.values(), 1)} if isinstance(
                value, dict) else MASK
        elif mask and value and (name, f.name) == ("store", "url"):
            value = mask_url(value)
        out[f.name] = value
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def mask_url(url: str) -> str:
    """The URL with its password (``scheme://user:secret@host``) replaced by ``MASK``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit((parts.scheme, f"{user}:{MASK}@{host}{port}", parts.path, parts.query, parts.fragment))


def to_toml(config: Config, *, mask: bool = True) -> str:
    """The configuration as a TOML file, one table per section, every key with its effective value."""
    lines: list[str] = []
    for name in SECTIONS:
        section = getattr(config, name)
        _table(lines, name, section, _section(name, section, mask))
    return "\n".join(lines).rstrip() + "\n"


def _table(lines: list[str], name: str, section: Any, table: dict[str, Any]) -> None:
    lines.append(f"[{name}]")
    nested = [key for key in table if is_dataclass(getattr(section, key))]
    lines.extend(f"{key} = {_value(value)}" for key, value in table.items() if key not in nested)
    lines.append("")
    for key in nested:
        _table(lines, f"{name}.{key}", getattr(section, key), table[key])


def _value(value: Any) -> str:
    if value is None:
        return '"none"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        pairs = ", ".join(f"{json.dumps(k)} = {_value(v)}" for k, v in value.items())
        return "{ " + pairs + " }" if value else "{}"
    raise TypeError(f"cannot write {value!r} as TOML")
