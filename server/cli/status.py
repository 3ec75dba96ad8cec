"""``supervisor status``: the server's uptime, sessions by state, connections and lifetime counters.

Owns: the ``status`` command. Knows only the admin API's JSON (through ``AdminClient``).
"""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.table import Table

from server.cli import render
from server.cli.admin_client import AdminClient
from server.cli.options import DEFAULT_OPTIONS, ClientOptions


@render.handle_errors
async def status(*, options: ClientOptions = DEFAULT_OPTIONS) -> int:
    """Show the server's status: uptime, sessions by state, connections, rehydrations, restarts."""
    body = await AdminClient.from_options(options).status()
    if options.as_json:
        render.print_json(body)
    else:
        render.console().print(status_table(body, options.url))
    return 0


def status_table(body: dict[str, Any], url: str) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    by_state = body.get("sessions_by_state") or {}
    states = "  ".join(f"{render.state(name)} {n}" for name, n in by_state.items() if n) or "none"
    stored = body.get("stored_sessions")
    rows = [
        ("server", escape(url)),
        ("uptime", render.duration(float(body.get("uptime_seconds", 0)))),
        ("live sessions", str(body.get("live_sessions", 0))),
        ("stored sessions", "-" if stored is None else str(stored)),
        ("by state", states),
        ("connections", str(body.get("connections", 0))),
        ("rehydrations", str(body.get("rehydrations", 0))),
        ("passivations", str(body.get("passivations", 0))),
        ("restarts", str(body.get("restarts", 0))),
        ("crashes", str(body.get("crashes", 0))),
    ]
    if "node_id" in body:  # cluster mode
        nodes = body.get("nodes")
        listed = "unknown (Redis unreachable)" if nodes is None else "  ".join(
            f"{escape(str(n['node_id']))} ({n['sessions']} sessions)" for n in nodes
        ) or "none"
        rows += [("node", escape(str(body["node_id"]))), ("nodes", listed)]
    for name, value in rows:
        table.add_row(name, value)
    return table
