"""``supervisor events ID``: a session's stored events after an id, optionally followed as they come.

Owns: the ``events`` command. ``--follow`` polls the admin API (``--interval``), which works for passivated
sessions too and never joins the session as a connection (it does not keep it alive). Knows only the admin
API's JSON (through ``AdminClient``).
"""

from __future__ import annotations

from typing import Annotated, Any

import trio
from cyclopts import Parameter

from server.cli import render
from server.cli.admin_client import AdminClient
from server.cli.options import DEFAULT_OPTIONS, EXIT_USAGE, ClientOptions, CliError

PAGE_LIMIT = 500


@render.handle_errors
async def events(
    session_id: str,
    /,
    *,
    after: int = -1,
    limit: int | None = None,
    follow: Annotated[bool, Parameter(name=["--follow", "-f"], negative="")] = False,
    interval: float = 1.0,
    options: ClientOptions = DEFAULT_OPTIONS,
) -> int:
    """Print a session's events with id > --after (JSON lines with --json); --follow keeps printing new ones.

    Parameters
    ----------
    session_id
        The session (conversation) id.
    after
        Print events with a larger id (-1: from the start).
    limit
        Print at most this many events (without --follow). Default: all.
    follow
        Keep polling for new events until Ctrl-C.
    interval
        Seconds between polls with --follow.
    """
    if after < -1 or (limit is not None and limit < 1) or interval <= 0:
        raise CliError("--after must be >= -1, --limit >= 1 and --interval > 0", EXIT_USAGE)
    client = AdminClient.from_options(options)
    cursor = after
    printed = 0
    while True:
        want = PAGE_LIMIT if limit is None or follow else min(PAGE_LIMIT, limit - printed)
        page = await client.events(session_id, after=cursor, limit=want)
        for payload in page["events"]:
            _print(payload, options)
        printed += len(page["events"])
        cursor = int(page.get("next_after", cursor))
        if page.get("more") and (follow or limit is None or printed < limit):
            continue
        if not follow:
            return 0
        await trio.sleep(interval)


def _print(payload: dict[str, Any], options: ClientOptions) -> None:
    if options.as_json:
        render.print_json_line(payload)
    else:
        render.console().print(render.event_line(payload))
