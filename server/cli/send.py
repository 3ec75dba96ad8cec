"""``supervisor send ID TEXT``: join a session as a Socket.IO client, send a message, print what follows.

Owns: the ``send`` command. It connects like any client (``server.client.open_client``, query
``conversation_id`` / ``latest_event_id``, auth ``{token: API key}``), sends ``oh_user_action``
``{"action": "message", "args": {"content": TEXT}}`` and prints the session's events from its own message
on, until the agent's reply (default), right after the echo (``--no-wait``) or until Ctrl-C (``--follow``,
reconnecting with the last seen id so nothing is printed twice). Knows nothing of the admin API.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import trio
from cyclopts import Parameter

from server.cli import render
from server.cli.http_client import os_error_reason
from server.cli.options import (
    DEFAULT_URL,
    EXIT_AUTH,
    EXIT_ERROR,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    CliError,
)

OH_EVENT = "oh_event"
OH_USER_ACTION = "oh_user_action"
FROM_NOW = 2**53  # a cursor past any head: the server starts the replay at the session's current head


@render.handle_errors
async def send(
    session_id: str,
    text: str,
    /,
    *,
    url: Annotated[str, Parameter(env_var="SUPERVISOR_URL")] = DEFAULT_URL,
    api_key: Annotated[str | None, Parameter(env_var="SUPERVISOR_API_KEY")] = None,
    follow: Annotated[bool, Parameter(name=["--follow", "-f"], negative="")] = False,
    wait: bool = True,
    after: int | None = None,
    as_json: Annotated[bool, Parameter(name="--json", negative="")] = False,
    timeout: float = 30.0,  # noqa: ASYNC109 - a command-line option, applied with move_on_after
) -> int:
    """Send a message to a session as a client and print the session's events that follow it.

    Parameters
    ----------
    session_id
        The session (conversation) id; created if it does not exist.
    text
        The message content.
    url
        Base URL of the server.
    api_key
        Client API key (auth.token). Env: SUPERVISOR_API_KEY.
    follow
        Keep printing the session's events until Ctrl-C.
    wait
        Wait for the agent's reply (--no-wait: stop after the server confirmed the message).
    after
        Also print the stored events with id > AFTER (-1: the whole history). Default: from the message on.
    as_json
        Print each event as one JSON line.
    timeout
        Seconds to wait for the connection, the confirmation and (without --follow) the reply.
    """
    if after is not None and after < -1:
        raise CliError("--after must be >= -1", EXIT_USAGE)
    # Imported here: the Socket.IO client stack is only needed by this command.
    from server.client import (
        ClientError,
        ConnectError,
        ConnectionFailedError,
        DisconnectedError,
        build_url,
        open_client,
    )
    from server.logs import configure_logging

    configure_logging("auto", "warning")  # the client logs its connects at info: not for a person's terminal
    try:
        build_url(url, "socket.io")
    except ValueError as exc:
        raise CliError(f"bad --url: {exc}", EXIT_USAGE) from None
    # The highest event id printed: a reconnect (--follow) resumes after it, so nothing prints twice.
    seen = after if after is not None else FROM_NOW

    def query() -> dict[str, str]:
        return {"conversation_id": session_id, "latest_event_id": str(seen)}

    auth = {"token": api_key} if api_key else None
    try:
        async with open_client(
            url, query=query, auth=auth, reconnect=follow, max_attempts=10, connect_timeout=timeout,
        ) as client:
            ack = await client.call(
                OH_USER_ACTION, {"action": "message", "args": {"content": text}}, timeout=timeout
            )
            if not isinstance(ack, dict) or not isinstance(ack.get("id"), int):
                message = ack.get("error") if isinstance(ack, dict) else None
                raise CliError(f"the server refused the message: {message or ack!r}", EXIT_ERROR)
            own_id: int = ack["id"]
            if after is None:
                seen = own_id - 1
            with trio.move_on_after(float("inf") if follow else timeout) as scope:
                async for event in client.events():
                    payload = _payload(event.name, event.args)
                    if payload is None:
                        continue
                    if payload.get("status_update"):
                        if follow or payload.get("type") == "error":
                            _print(payload, as_json, to_stderr=not follow)
                        continue
                    event_id = payload.get("id")
                    if not isinstance(event_id, int) or event_id <= seen:
                        continue
                    seen = event_id
                    _print(payload, as_json)
                    if follow:
                        continue
                    if event_id >= own_id and not wait:
                        return 0
                    if event_id > own_id and payload.get("source") == "agent":
                        return 0
            if scope.cancelled_caught:
                raise CliError(f"no reply from the agent within {timeout:g} s (the message was stored as "
                               f"event {own_id})", EXIT_ERROR)
            raise CliError("the server closed the connection", EXIT_UNREACHABLE)
    except ConnectError as exc:
        raise CliError(f"the server refused the connection: {exc.message}", EXIT_AUTH) from None
    except ConnectionFailedError as exc:
        reason = os_error_reason(exc)
        raise CliError(f"cannot reach the server at {url}: {reason}", EXIT_UNREACHABLE) from None
    except DisconnectedError as exc:
        raise CliError(f"lost the connection to {url}: {exc}", EXIT_UNREACHABLE) from None
    except TimeoutError:
        raise CliError(
            f"the server did not confirm the message within {timeout:g} s", EXIT_UNREACHABLE
        ) from None
    except ClientError as exc:
        raise CliError(f"client error: {exc}", EXIT_ERROR) from None


def _payload(name: str, args: list[Any]) -> dict[str, Any] | None:
    if name != OH_EVENT or not args or not isinstance(args[0], dict):
        return None
    payload: dict[str, Any] = args[0]
    return payload


def _print(payload: dict[str, Any], as_json: bool, *, to_stderr: bool = False) -> None:
    if as_json and not to_stderr:
        render.print_json_line(payload)
    elif to_stderr:
        sys.stderr.write(f"{payload.get('id')}: {payload.get('message')}\n")
    else:
        render.console().print(render.event_line(payload))
