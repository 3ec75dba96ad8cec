"""How the operator commands print: rich tables for people, JSON for scripts, one-line errors.

Owns: the stdout console, ``print_json`` / ``print_json_line``, ``error`` (one line on stderr), the
``handle_errors`` decorator that turns ``CliError`` and Ctrl-C into exit codes, session and event
formatting. Knows nothing of HTTP or of the admin API's routes.
"""

from __future__ import annotations

import functools
import json
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from server.cli.options import EXIT_INTERRUPTED, CliError

P = ParamSpec("P")

_console: Console | None = None


def console() -> Console:
    """stdout; wide when piped so tables are not squeezed into 80 columns."""
    global _console
    if _console is None:
        _console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
    return _console


def print_json(payload: Any) -> None:
    sys.stdout.write(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def print_json_line(payload: Any) -> None:
    sys.stdout.write(json.dumps(payload, separators=(",", ":"), ensure_ascii=False) + "\n")
    sys.stdout.flush()


def error(message: str) -> None:
    """One line on stderr, never wrapped or styled (scripts grep it)."""
    sys.stderr.write("error: " + " ".join(message.split()) + "\n")
    sys.stderr.flush()


def handle_errors(fn: Callable[P, Awaitable[int]]) -> Callable[P, Awaitable[int]]:
    """Run a command: a ``CliError`` prints its line and returns its exit code; Ctrl-C returns 130."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> int:
        try:
            return await fn(*args, **kwargs)
        except CliError as exc:
            error(exc.message)
            return exc.exit_code
        except KeyboardInterrupt:
            return EXIT_INTERRUPTED

    return wrapper


# ---- values ------------------------------------------------------------------------------------------


def ago(timestamp: float | None, now: float | None = None) -> str:
    if timestamp is None:
        return "-"
    return duration(max(0.0, (now if now is not None else time.time()) - timestamp)) + " ago"


def duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def when(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp))


_STATE_STYLE = {
    "active": "green",
    "idle": "cyan",
    "loading": "yellow",
    "passivating": "yellow",
    "passivated": "dim",
    "crashed": "red",
    "failed": "bold red",
}


def state(value: str) -> str:
    style = _STATE_STYLE.get(value)
    return f"[{style}]{escape(value)}[/]" if style else escape(value)


# ---- sessions ----------------------------------------------------------------------------------------


def sessions_table(sessions: list[dict[str, Any]]) -> Table:
    cluster = any("owner_node" in s for s in sessions)
    table = Table(box=None, header_style="bold", pad_edge=False)
    for name, justify in (("SESSION", "left"), ("STATE", "left"), ("CONNS", "right"), ("MAILBOX", "right"),
                          ("EVENTS", "right"), ("RESTARTS", "right"), ("LAST ACTIVITY", "left"),
                          ("OWNER", "left")):
        table.add_column(name, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    if cluster:
        table.add_column("NODE", no_wrap=True)
    now = time.time()
    for s in sessions:
        table.add_row(
            escape(s["session_id"]), state(s["state"]), str(s["connections"]), str(s["mailbox_depth"]),
            str(s["event_count"]), str(s["restarts"]), ago(s.get("last_activity"), now),
            escape(s.get("owner") or "-"),
            *((escape(s.get("owner_node") or "-"),) if cluster else ()),
        )
    return table


def session_details(s: dict[str, Any]) -> list[Table]:
    fields = Table.grid(padding=(0, 2))
    fields.add_column(style="bold", no_wrap=True)
    fields.add_column()
    rows = [
        ("session", escape(s["session_id"])),
        ("state", state(s["state"])),
        ("owner", escape(s.get("owner") or "-")),
        ("connections", str(s["connections"])),
        ("mailbox depth", str(s["mailbox_depth"])),
        ("turn running", "yes" if s.get("turn_running") else "no"),
        ("last activity", f"{when(s.get('last_activity'))} ({ago(s.get('last_activity'))})"
         if s.get("last_activity") else "-"),
        ("events", f"{s['event_count']} (last id {s['last_event_id']})"),
        ("restarts", str(s["restarts"])),
        ("created", when(s.get("created_at"))),
    ]
    if s.get("idle_deadline_in") is not None:
        rows.append(("passivates in", duration(s["idle_deadline_in"])))
    if "owner_node" in s:  # cluster mode
        rows.append(("owner node", escape(s.get("owner_node") or "- (no node holds it)")))
        rows.append(("fence", "-" if s.get("fence") is None else str(s["fence"])))
    for name, value in rows:
        fields.add_row(name, value)
    out = [fields]
    details = s.get("connection_details") or []
    if details:
        conns = Table(box=None, header_style="bold", pad_edge=False, title="connections",
                      title_justify="left")
        for name in ("SID", "REMOTE ADDRESS", "SINCE", "TRANSPORT", "USER"):
            conns.add_column(name, no_wrap=True)
        for c in details:
            remote = c.get("remote_address") or "-"
            if c.get("forwarded_for"):
                remote += f" (for {c['forwarded_for']})"
            conns.add_row(escape(c["sid"]), escape(remote), ago(c.get("since")),
                          escape(c.get("transport") or "-"), escape(c.get("user_id") or "-"))
        out.append(conns)
    return out


# ---- events ------------------------------------------------------------------------------------------


def event_line(payload: dict[str, Any]) -> str:
    """``#12 user   hello`` for log events; ``· STATUS$READY ready`` for status updates (rich markup)."""
    if payload.get("status_update"):
        style = "red" if payload.get("type") == "error" else "dim"
        return f"[{style}]· {escape(str(payload.get('id', '')))} {escape(str(payload.get('message', '')))}[/]"
    source = str(payload.get("source", "?"))
    text = payload.get("message")
    if not text:
        kind = payload.get("action") or payload.get("observation") or "event"
        text = f"({kind})"
    style = {"user": "bold", "agent": "green", "environment": "yellow"}.get(source, "")
    head = f"#{payload.get('id', '?')} {source:<6}"
    body = escape(str(text))
    return f"[{style}]{escape(head)}[/] {body}" if style else f"{escape(head)} {body}"
