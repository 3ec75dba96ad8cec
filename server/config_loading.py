"""Reading the configuration tree from a TOML file, the environment and flags, in that order of precedence.

Owns: ``load_config`` (file < ``SUPERVISOR_<SECTION>_<KEY>`` environment variables < flags), the three
readers that turn each source into ``Setting`` values (``read_file``, ``read_env``; the CLI makes its own
for flags), ``build`` (settings -> a validated ``server.config.Config``) and ``ConfigError``: one line
``<source>: [section] key: reason`` for an unknown key or a bad value (wrong type, out of range, not one of
the allowed words). Types come from the sections' type hints, so a field added to a section is loadable
with no change here. Knows nothing of the command line's syntax or of what the layers do with the values.

Value syntax: TOML values as they are (``close_delay = 30.5``, ``transports = ["websocket"]``,
``[gateway.api_keys] "k1" = "alice"``). TOML has no null: an optional field takes the string ``"none"``
(also ``"never"``; ``"inf"`` for an optional number). Environment values are text: numbers and words as
in TOML, booleans ``true/false/1/0/yes/no/on/off``, lists comma-separated, tables ``key=value,key=value``;
an empty variable counts as unset. Kept for compatibility: ``SUPERVISOR_API_KEY`` (one client key, user
``default``) and ``SUPERVISOR_ADMIN_TOKEN`` (which is simply ``[admin] token``).
"""

from __future__ import annotations

import difflib
import enum
import math
import tomllib
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from server.config import SECRETS, SECTIONS, Config

__all__ = ["ENV_PREFIX", "ConfigError", "Setting", "build", "load_config", "read_env", "read_file"]

ENV_PREFIX = "SUPERVISOR_"
LEGACY_API_KEY = "SUPERVISOR_API_KEY"
NONE_WORDS = frozenset({"none", "never"})
TRUE_WORDS = frozenset({"true", "1", "yes", "on"})
FALSE_WORDS = frozenset({"false", "0", "no", "off"})

# Limits of the layers that take their values as given (server.http, server.engineio); the other
# sections validate themselves on construction.
_POSITIVE_TIMES = frozenset({"ping_interval", "ping_timeout", "upgrade_timeout", "keepalive_timeout",
                             "request_timeout", "send_timeout"})


@dataclass(frozen=True, slots=True)
class Setting:
    """One value for one key, and where it came from (a file name, an environment variable, a flag)."""

    section: str
    key: tuple[str, ...]  # ("port",), or ("restart", "intensity") for a nested section
    value: Any
    source: str
    text: bool = False  # a string to parse (environment, some flags) rather than a typed value


class ConfigError(ValueError):
    """A configuration source names an unknown key or gives a bad value; ``str()`` is the one-line message."""

    def __init__(self, source: str, section: str | None, key: str | None, reason: str) -> None:
        self.source, self.section, self.key, self.reason = source, section, key, reason
        where = f"[{section}] {key}" if section and key else f"[{section}]" if section else key or ""
        super().__init__(f"{source}: {where}: {reason}" if where else f"{source}: {reason}")


class _Bad(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def load_config(
    path: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    flags: Iterable[Setting] = (),
    *,
    base: Config | None = None,
) -> Config:
    """The effective configuration: ``base`` (default ``Config()``) < the TOML file < ``env`` < flags."""
    settings = [*(read_file(path) if path is not None else []), *read_env(env or {}), *flags]
    return build(settings, base)


# ---- readers -------------------------------------------------------------------------------------------


def read_file(path: str | Path) -> list[Setting]:
    source = str(path)
    try:
        with open(path, "rb") as file:
            data = tomllib.load(file)
    except OSError as exc:
        raise ConfigError(source, None, None, f"cannot read the file: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, None, None, f"not valid TOML: {exc}") from None
    settings: list[Setting] = []
    for section, table in data.items():
        if section not in SECTIONS:
            if not isinstance(table, dict):
                raise ConfigError(source, None, section, _top_level_hint(section))
            raise ConfigError(source, section, None, f"unknown section (known: {', '.join(SECTIONS)})")
        if not isinstance(table, dict):
            raise ConfigError(source, None, section, f"expected a table [{section}], got a value")
        nested = _nested_fields(SECTIONS[section])
        for key, value in table.items():
            if key in nested and isinstance(value, dict):
                for sub, sub_value in value.items():
                    _known_key(nested[key], sub, source, f"{section}.{key}")
                    settings.append(Setting(section, (key, sub), sub_value, source))
                continue
            _known_key(SECTIONS[section], key, source, section)
            if key in nested:
                raise ConfigError(source, section, key, f"expected a table [{section}.{key}]")
            settings.append(Setting(section, (key,), value, source))
    return settings


def read_env(env: Mapping[str, str]) -> list[Setting]:
    """``SUPERVISOR_<SECTION>_<KEY>`` variables (nested: ``SUPERVISOR_SUPERVISOR_RESTART_INTENSITY``).
    Variables that name no section (``SUPERVISOR_URL``: the operator commands') are not ours: skipped."""
    settings: list[Setting] = []
    for name in sorted(env):
        value = env[name]
        if not name.startswith(ENV_PREFIX) or value == "":
            continue
        if name == LEGACY_API_KEY:
            settings.append(Setting("gateway", ("api_keys",), {value: "default"}, name))
            continue
        rest = name[len(ENV_PREFIX):].lower()
        section = next((s for s in SECTIONS if rest.startswith(s + "_")), None)
        if section is None:
            continue
        settings.append(Setting(section, _env_key(section, rest[len(section) + 1:], name), value, name, True))
    return settings


def _env_key(section: str, key: str, source: str) -> tuple[str, ...]:
    cls = SECTIONS[section]
    if key in _field_names(cls):
        return (key,)
    for name, nested in _nested_fields(cls).items():
        if key.startswith(name + "_") and key[len(name) + 1:] in _field_names(nested):
            return (name, key[len(name) + 1:])
    _known_key(cls, key, source, section)
    raise AssertionError("unreachable")  # pragma: no cover


def _known_key(cls: type, key: str, source: str, section: str) -> None:
    names = _field_names(cls)
    if key in names:
        return
    close = difflib.get_close_matches(key, names, n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(names)}"
    raise ConfigError(source, section, key, f"unknown key ({hint})")


def _top_level_hint(key: str) -> str:
    homes = [f"[{name}] {key}" for name, cls in SECTIONS.items() if key in _field_names(cls)]
    where = f"; did you mean {' or '.join(homes)}?" if homes else ""
    return f"a key outside any section{where}"


# ---- building ------------------------------------------------------------------------------------------


def build(settings: Iterable[Setting], base: Config | None = None) -> Config:
    """Apply ``settings`` (later ones win per key) to ``base``; every value is checked on its own, so an
    error names the one key and the source it came from."""
    config = base or Config()
    by_section: dict[str, dict[tuple[str, ...], Setting]] = {}
    for setting in settings:
        by_section.setdefault(setting.section, {})[setting.key] = setting
    sections: dict[str, Any] = {}
    for name, chosen in by_section.items():
        if name not in SECTIONS:
            first = next(iter(chosen.values()))
            raise ConfigError(first.source, name, None, "unknown section")
        current = getattr(config, name)
        values: dict[str, Any] = {}
        nested: dict[str, list[Setting]] = {}
        for key, setting in chosen.items():
            if len(key) == 2:
                nested.setdefault(key[0], []).append(setting)
            else:
                values[key[0]] = _checked(current, name, key[0], setting)
        for field_name, subs in nested.items():
            inner = getattr(current, field_name)
            label = f"{name}.{field_name}"
            inner_values = {s.key[1]: _checked(inner, label, s.key[1], s) for s in subs}
            values[field_name] = _combined(inner, inner_values, label, subs)
        sections[name] = _combined(current, values, name, list(chosen.values()))
    return config.with_(**sections)


def _checked(current: Any, section: str, key: str, setting: Setting) -> Any:
    hint = _hints(type(current)).get(key)
    if hint is None:
        raise ConfigError(setting.source, section, key, "unknown key")
    try:
        value = _coerce(setting.value, hint, setting.text)
        _layer_limits(section, key, value)
        replace(current, **{key: value})  # the section's own validation, for this key alone
    except _Bad as exc:
        secret = (section, key) in SECRETS
        reason = exc.reason.split(", got ")[0] if secret else exc.reason  # never echo a secret
        raise ConfigError(setting.source, section, key, reason) from None
    except (ValueError, TypeError) as exc:
        raise ConfigError(setting.source, section, key, _reason(exc, key)) from None
    return value


def _combined(current: Any, values: dict[str, Any], section: str, settings: Sequence[Setting]) -> Any:
    try:
        return replace(current, **values)
    except (ValueError, TypeError) as exc:  # a rule across keys: name the keys and where the last came from
        keys = ", ".join(s.key[-1] for s in settings)
        raise ConfigError(settings[-1].source, section, keys, _reason(exc, "")) from None


def _reason(exc: Exception, key: str) -> str:
    text = str(exc)
    return text[len(key) + 1:] if key and text.startswith(key + " ") else text


def _layer_limits(section: str, key: str, value: Any) -> None:
    if section not in ("http", "engineio") or isinstance(value, bool):
        return
    if section == "http" and key == "port":
        if not 0 <= value <= 65535:
            raise _Bad(f"must be between 0 and 65535, got {value}")
    elif isinstance(value, int) and value < 1:
        raise _Bad(f"must be >= 1, got {value}")
    elif isinstance(value, float) and key in _POSITIVE_TIMES and value <= 0:
        raise _Bad(f"must be > 0 seconds, got {value}")
    elif isinstance(value, float) and value < 0:
        raise _Bad(f"must be >= 0 seconds, got {value}")
    elif isinstance(value, str) and key == "host" and not value:
        raise _Bad("must not be empty")


# ---- types ---------------------------------------------------------------------------------------------


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        hints = typing.get_type_hints(cls)
        _HINTS[cls] = {f.name: hints[f.name] for f in fields(cls)}
    return _HINTS[cls]


def _field_names(cls: type) -> list[str]:
    return [f.name for f in fields(cls)]


def _nested_fields(cls: type) -> dict[str, type]:
    return {name: hint for name, hint in _hints(cls).items() if isinstance(hint, type) and is_dataclass(hint)}


def _coerce(value: Any, hint: Any, text: bool) -> Any:
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, types.UnionType):
        return _coerce_union(value, args, text)
    if origin is Literal:
        if value in args:
            return value
        raise _Bad(f"expected one of {', '.join(map(str, args))}, got {value!r}")
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        for member in hint:
            if isinstance(value, str) and value.lower() == str(member.value).lower():
                return member
        raise _Bad(f"expected one of {', '.join(str(m.value) for m in hint)}, got {value!r}")
    if origin in (list, tuple):
        items = value
        if text and isinstance(value, str):
            items = [s.strip() for s in value.split(",") if s.strip()]
        if not isinstance(items, list):
            raise _Bad(f"expected a list, got {_shown(value)}")
        converted = [_coerce(item, args[0], text) for item in items]
        return tuple(converted) if origin is tuple else converted
    if origin in (dict, Mapping):
        return _coerce_table(value, text)
    if hint is bool:
        return _coerce_bool(value, text)
    if hint is int:
        return _coerce_int(value, text)
    if hint is float:
        return _coerce_float(value, text)
    if hint is str:
        if isinstance(value, str):
            return value
        raise _Bad(f"expected a string, got {_shown(value)}")
    if hint is Path:
        if isinstance(value, str) and value:
            return Path(value)
        raise _Bad(f"expected a path (a string), got {_shown(value)}")
    raise _Bad(f"cannot be set from a configuration source (type {hint})")


def _coerce_union(value: Any, args: tuple[Any, ...], text: bool) -> Any:
    members = [a for a in args if a is not type(None)]
    optional = len(members) < len(args)
    if optional and isinstance(value, str) and value.strip().lower() in NONE_WORDS:
        return None
    if optional and float in members and (
        (isinstance(value, str) and value.strip().lower() in ("inf", "infinity"))
        or (isinstance(value, float) and math.isinf(value) and value > 0)
    ):
        return None
    if text and value != "*":  # from text, "a,b" is a list where a list is allowed
        members.sort(key=lambda m: get_origin(m) not in (list, tuple))
    reasons = []
    for member in members:
        try:
            return _coerce(value, member, text)
        except _Bad as exc:
            reasons.append(exc.reason.split(", got ")[0].removeprefix("expected "))
    allowed = " or ".join([*reasons, "'none'"] if optional else reasons)
    raise _Bad(f"expected {allowed}, got {_shown(value)}")


def _coerce_table(value: Any, text: bool) -> dict[str, str]:
    if text and isinstance(value, str):
        pairs = [item.split("=", 1) for item in value.split(",") if item.strip()]
        if any(len(pair) != 2 for pair in pairs):
            raise _Bad("expected key=value pairs separated by commas")
        value = {k.strip(): v.strip() for k, v in pairs}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise _Bad(f"expected a table of strings, got {_shown(value)}")
    return dict(value)


def _coerce_bool(value: Any, text: bool) -> bool:
    if isinstance(value, bool):
        return value
    if text and isinstance(value, str) and value.strip().lower() in TRUE_WORDS | FALSE_WORDS:
        return value.strip().lower() in TRUE_WORDS
    raise _Bad(f"expected true or false, got {_shown(value)}")


def _coerce_int(value: Any, text: bool) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if text and isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise _Bad(f"expected an integer, got {_shown(value)}")


def _coerce_float(value: Any, text: bool) -> float:
    number: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    elif text and isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            number = None
    if number is None:
        raise _Bad(f"expected a number, got {_shown(value)}")
    if not math.isfinite(number):
        raise _Bad(f"expected a finite number, got {_shown(value)}")
    return number


def _shown(value: Any) -> str:
    kind = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list",
            dict: "a table"}.get(type(value))
    shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
    return f"{kind} {shown}" if kind and not isinstance(value, str) else shown
