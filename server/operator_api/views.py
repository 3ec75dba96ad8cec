"""The admin API's JSON shapes: pure functions from runtime records to dicts.

Owns: how a live session (``SessionInfo``), a stored one (``SessionRecord``), a connection and the server
status look in JSON. States are the lifecycle table's names in lower case (``active``, ``idle``,
``passivated``...). Knows nothing of HTTP, tokens or how the records were obtained.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from actors.lifecycle import ActorState
from actors.stores.base import SessionRecord
from actors.supervisor import SessionInfo

STATES: tuple[str, ...] = tuple(state.value for state in ActorState)
LIVE_STATES: frozenset[str] = frozenset(s for s in STATES if s != ActorState.PASSIVATED.value)


def live_session(info: SessionInfo, record: SessionRecord | None = None) -> dict[str, Any]:
    view: dict[str, Any] = {
        "session_id": info.session_id,
        "state": info.state,
        "live": True,
        "owner": info.owner,
        "connections": info.connections,
        "mailbox_depth": info.mailbox_depth,
        "last_activity": info.last_activity,
        "event_count": info.event_count,
        "last_event_id": info.last_event_id,
        "restarts": info.restarts,
        "turn_running": info.turn_running,
        "idle_deadline_in": info.idle_deadline_in,
        "runtime": info.runtime,
    }
    if record is not None:
        view["created_at"] = record.created_at
    return view


def stored_session(record: SessionRecord) -> dict[str, Any]:
    """A session that is not live: everything we know is in the store."""
    return {
        "session_id": record.session_id,
        "state": ActorState.PASSIVATED.value,
        "live": False,
        "owner": record.owner,
        "connections": 0,
        "mailbox_depth": 0,
        "last_activity": None,
        "event_count": record.last_event_id + 1,
        "last_event_id": record.last_event_id,
        "restarts": 0,
        "turn_running": False,
        "idle_deadline_in": None,
        "created_at": record.created_at,
        "snapshot_event_id": record.snapshot_event_id,
    }


def connection(
    sid: str, user_id: str, since: float, environ: Mapping[str, Any] | None, transport: str | None
) -> dict[str, Any]:
    environ = environ or {}
    view: dict[str, Any] = {
        "sid": sid,
        "user_id": user_id,
        "remote_address": environ.get("REMOTE_ADDR"),
        "since": since,
        "transport": transport,
    }
    forwarded = environ.get("HTTP_X_FORWARDED_FOR") or environ.get("HTTP_X_REAL_IP")
    if forwarded:
        view["forwarded_for"] = forwarded  # as sent by a reverse proxy (not verified)
    return view


def status(
    *,
    started_at: float,
    now: float,
    state_counts: Mapping[str, int],
    stored_sessions: int | None,
    connections: int,
    counters: Mapping[str, int],
) -> dict[str, Any]:
    by_state = {state: int(state_counts.get(state, 0)) for state in STATES if state in LIVE_STATES}
    live = sum(by_state.values())
    if stored_sessions is not None:
        by_state[ActorState.PASSIVATED.value] = max(0, stored_sessions - live)
    return {
        "status": "ok",
        "started_at": started_at,
        "uptime_seconds": max(0.0, now - started_at),
        "live_sessions": live,
        "stored_sessions": stored_sessions,
        "sessions_by_state": by_state,
        "connections": connections,
        "rehydrations": _sum_kind(counters, "rehydrations"),
        "restarts": _sum_kind(counters, "restarts"),
        "crashes": _sum_kind(counters, "crashes"),
        "passivations": _sum_kind(counters, "passivations"),
        "counters": dict(sorted(counters.items())),
    }


def _sum_kind(counters: Mapping[str, int], kind: str) -> int:
    """The supervisor keys labelled counters ``kind.label``: add them up with the unlabelled one."""
    prefix = kind + "."
    return sum(n for key, n in counters.items() if key == kind or key.startswith(prefix))
