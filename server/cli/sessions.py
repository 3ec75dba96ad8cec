"""``supervisor sessions ...``: list, show, passivate, kill and delete sessions through the admin API.

Owns: the ``sessions`` sub-app and its five commands (``passivate --all`` with a rich progress bar).
Knows only the admin API's JSON (through ``AdminClient``).
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import cyclopts
import trio
from cyclopts import Parameter
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from server.cli import render
from server.cli.admin_client import AdminClient
from server.cli.options import DEFAULT_OPTIONS, EXIT_ERROR, EXIT_USAGE, ClientOptions, CliError

sessions = cyclopts.App(name="sessions", help="List, inspect, passivate, kill and delete sessions.")

PAGE_LIMIT = 100
PASSIVATE_CONCURRENCY = 8
LIVE_STATES = ["loading", "active", "idle"]  # what ``passivate --all`` passivates


@sessions.command(name="list")
@render.handle_errors
async def list_sessions(
    *,
    state: Annotated[list[str] | None, Parameter(consume_multiple=True)] = None,
    after: str | None = None,
    limit: int = 50,
    all_pages: Annotated[bool, Parameter(name="--all", negative="")] = False,
    options: ClientOptions = DEFAULT_OPTIONS,
) -> int:
    """List sessions, live and passivated, ordered by id.

    Parameters
    ----------
    state
        Only sessions in these states (loading, active, idle, passivating, passivated, crashed, failed);
        repeat or separate with commas.
    after
        Start after this session id (the ``next_after`` of the previous page).
    limit
        Sessions per page (at most 1000).
    all_pages
        Fetch every page, not only the first.
    """
    client = AdminClient.from_options(options)
    states = _split(state)
    found: list[dict[str, Any]] = []
    cursor = after
    while True:
        page = await client.list_sessions(states=states, after=cursor, limit=limit)
        found.extend(page["sessions"])
        cursor = page.get("next_after")
        if not all_pages or cursor is None:
            break
    if options.as_json:
        render.print_json({"sessions": found, "next_after": cursor})
        return 0
    out = render.console()
    if not found:
        out.print("no sessions" + (f" in state {', '.join(states)}" if states else ""))
    else:
        out.print(render.sessions_table(found))
    if cursor is not None:
        out.print(f"[dim]more: --after {escape(cursor)}[/]")
    return 0


@sessions.command
@render.handle_errors
async def show(session_id: str, /, *, options: ClientOptions = DEFAULT_OPTIONS) -> int:
    """Show one session: state, connections (remote address, since), mailbox, activity, events, restarts.

    Parameters
    ----------
    session_id
        The session (conversation) id.
    """
    body = await AdminClient.from_options(options).show(session_id)
    if options.as_json:
        render.print_json(body)
    else:
        for table in render.session_details(body):
            render.console().print(table)
    return 0


@sessions.command
@render.handle_errors
async def passivate(
    session_id: str | None = None,
    /,
    *,
    all_sessions: Annotated[bool, Parameter(name="--all", negative="")] = False,
    options: ClientOptions = DEFAULT_OPTIONS,
) -> int:
    """Persist a session now and end its task; its clients are told STATUS$STOPPED and may reconnect.

    Parameters
    ----------
    session_id
        The session to passivate.
    all_sessions
        Passivate every live session (with a progress bar).
    """
    if all_sessions == (session_id is not None):
        raise CliError("give a session id or --all (not both)", EXIT_USAGE)
    client = AdminClient.from_options(options)
    if session_id is not None:
        body = await client.passivate(session_id)
        _report(options, body, "passivated" if body["was_live"] else "was not live (already passivated)")
        return 0
    return await _passivate_all(client, options)


@sessions.command
@render.handle_errors
async def kill(session_id: str, /, *, options: ClientOptions = DEFAULT_OPTIONS) -> int:
    """Stop a session without a snapshot; it rehydrates from its event log on next use.

    Parameters
    ----------
    session_id
        The session to kill.
    """
    body = await AdminClient.from_options(options).kill(session_id)
    _report(options, body, "killed" if body["was_live"] else "was not live (nothing to kill)")
    return 0


@sessions.command
@render.handle_errors
async def delete(session_id: str, /, *, options: ClientOptions = DEFAULT_OPTIONS) -> int:
    """Delete a session for good: its event log, snapshot and runtime workspace (killed first if live).

    Parameters
    ----------
    session_id
        The session to delete.
    """
    body = await AdminClient.from_options(options).delete(session_id)
    parts = [what for what, done in (("log and snapshot", body["deleted_log"]),
                                     ("workspace", body["deleted_workspace"])) if done]
    _report(options, body, "deleted " + (" and ".join(parts) or "nothing stored")
            + (" (was live: killed first)" if body["was_live"] else ""))
    return 0


def _report(options: ClientOptions, body: dict[str, Any], what: str) -> None:
    if options.as_json:
        render.print_json(body)
    else:
        render.console().print(f"{escape(body['session_id'])}: {what}")


async def _passivate_all(client: AdminClient, options: ClientOptions) -> int:
    targets: list[str] = []
    cursor: str | None = None
    while True:
        page = await client.list_sessions(states=LIVE_STATES, after=cursor, limit=PAGE_LIMIT)
        targets.extend(s["session_id"] for s in page["sessions"])
        cursor = page.get("next_after")
        if cursor is None:
            break
    results: dict[str, dict[str, Any]] = {}
    failures: dict[str, str] = {}
    show_progress = not options.as_json and sys.stderr.isatty()
    with Progress(
        TextColumn("passivating"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=Console(stderr=True), disable=not show_progress,
    ) as progress:
        task = progress.add_task("passivate", total=len(targets))
        limiter = trio.CapacityLimiter(PASSIVATE_CONCURRENCY)

        async def one(session_id: str) -> None:
            async with limiter:
                try:
                    results[session_id] = await client.passivate(session_id)
                except CliError as exc:
                    failures[session_id] = exc.message
                progress.advance(task)

        async with trio.open_nursery() as nursery:
            for session_id in targets:
                nursery.start_soon(one, session_id)
    passivated = sorted(sid for sid, body in results.items() if body.get("was_live"))
    if options.as_json:
        render.print_json({"passivated": passivated, "failed": failures})
    else:
        out = render.console()
        out.print(f"passivated {len(passivated)} of {len(targets)} live sessions")
        for sid, message in sorted(failures.items()):
            out.print(f"[red]{escape(sid)}: {escape(message)}[/]")
    return EXIT_ERROR if failures else 0


def _split(values: list[str] | None) -> list[str]:
    return [v.strip().lower() for raw in values or [] for v in raw.split(",") if v.strip()]
