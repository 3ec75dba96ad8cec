"""The ``supervisor`` command: entry point and the ``serve`` command.

Owns: the cyclopts ``App`` (trio backend) and ``serve``'s options -> ``ServeConfig``. Operator commands
(status, sessions, events, send) live in their own modules and register on ``app``. Knows nothing of how the
server works inside: it builds a config and hands it to ``server.app``.
"""

from __future__ import annotations

import ipaddress
import sys
from pathlib import Path
from typing import Annotated

import cyclopts

from server.admin.token import ensure_token_file
from server.cli.events import events
from server.cli.send import send
from server.cli.sessions import sessions
from server.cli.status import status
from server.config import DEFAULT_DATA_DIR, DEFAULT_PORT, ServeConfig

app = cyclopts.App(
    name="supervisor",
    help="Session Supervisor: a trio-native Socket.IO session server.",
    backend="trio",
    version_flags=["--version"],
)
app.command(status)
app.command(sessions)
app.command(events)
app.command(send)


def parse_close_delay(value: str) -> float | None:
    if value.strip().lower() in {"never", "none", "inf"}:
        return None
    seconds = float(value)
    if seconds < 0:
        raise ValueError("close delay must be >= 0 seconds or 'never'")
    return seconds


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@app.command
async def serve(
    *,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    store: str | None = None,
    data_dir: Path = DEFAULT_DATA_DIR,
    close_delay: str = "120",
    agent: str = "echo",
    api_key: Annotated[str | None, cyclopts.Parameter(env_var="SUPERVISOR_API_KEY")] = None,
    auth_hook: str | None = None,
    allow_unauthenticated_public: bool = False,
    admin_token: Annotated[str | None, cyclopts.Parameter(env_var="SUPERVISOR_ADMIN_TOKEN")] = None,
    cors_allowed_origins: list[str] | None = None,
    max_live_sessions: int = 10_000,
    max_sessions_per_user: int | None = None,
    log_format: str = "auto",
    log_level: str = "info",
) -> int:
    """Run the session server.

    Parameters
    ----------
    host
        Interface to listen on. Without an API key only loopback is allowed.
    port
        TCP port (0 picks a free one).
    store
        Store URL: sqlite:///relative.db, sqlite:////absolute.db or memory://. Default: SQLite in
        the data dir.
    data_dir
        Directory for the SQLite database and the admin token file.
    close_delay
        Seconds a session without connections stays alive before it is passivated, or 'never'.
    agent
        Agent per session: 'echo', 'none' (persist and fan out only) or an import path 'module:Class'.
    api_key
        Key clients must present (auth.token, or query session_api_key). Env: SUPERVISOR_API_KEY.
    auth_hook
        Import path 'module:callable' mapping (token, environ) to a user id, or None to refuse.
    allow_unauthenticated_public
        Allow a non-loopback host without any client authentication.
    admin_token
        Token for the admin API. Env: SUPERVISOR_ADMIN_TOKEN. Default: generated into the data dir.
    cors_allowed_origins
        Origins allowed for browser clients ('*' for any). Default: same origin only.
    max_live_sessions
        Cap on sessions in memory; the coldest idle ones are passivated to make room.
    max_sessions_per_user
        Cap on one user's live sessions.
    log_format
        'json', 'console' or 'auto' (console on a terminal).
    log_level
        debug, info, warning or error.
    """
    # Imported here so that the operator commands (clients of a running server) start fast.
    import structlog

    from server.app import SupervisorApp, run_until_signal
    from server.logs import configure_logging

    configure_logging(log_format if log_format in {"json", "console"} else "auto", log_level)  # type: ignore[arg-type]
    log = structlog.get_logger("supervisor.serve")
    try:
        delay = parse_close_delay(close_delay)
    except ValueError as exc:
        print(f"error: --close-delay: {exc}", file=sys.stderr)
        return 2
    config = ServeConfig(
        host=host,
        port=port,
        data_dir=data_dir,
        store_url=store,
        close_delay=delay,
        agent=agent,
        api_keys={api_key: "default"} if api_key else {},
        auth_hook=auth_hook,
        allow_unauthenticated_public=allow_unauthenticated_public,
        admin_token=admin_token,
        log_format=log_format,
        log_level=log_level,
        cors_allowed_origins=_origins(cors_allowed_origins),
        max_live_sessions=max_live_sessions,
        max_sessions_per_user=max_sessions_per_user,
    )
    unauthenticated = not config.api_keys and not config.auth_hook
    if unauthenticated:
        if not _is_loopback(host) and not allow_unauthenticated_public:
            print(
                f"error: refusing to listen on {host} without client authentication; "
                "pass --api-key (or SUPERVISOR_API_KEY), --auth-hook, or --allow-unauthenticated-public",
                file=sys.stderr,
            )
            return 2
        log.warning("serve.no_authentication", hint="pass --api-key to require a key from clients")
    if config.store_url is None:
        config.data_dir.mkdir(parents=True, exist_ok=True)
    token_source = "--admin-token / SUPERVISOR_ADMIN_TOKEN"
    if config.admin_token is None:
        try:
            config.admin_token, token_file = ensure_token_file(config.data_dir)
        except OSError as exc:
            print(f"error: cannot write the admin token file in {config.data_dir}: {exc}", file=sys.stderr)
            return 2
        token_source = str(token_file)
    try:
        server = SupervisorApp(config)
    except (ValueError, TypeError, ImportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    def ready(address: tuple[str, int]) -> None:
        print(f"Session Supervisor listening on http://{address[0]}:{address[1]}", flush=True)
        print(f"Store: {_describe_store(config)}", flush=True)
        print(f"Admin token: {token_source}", flush=True)

    await run_until_signal(server, on_ready=ready)
    return 0


def _origins(values: list[str] | None) -> list[str] | str | None:
    if not values:
        return None
    return "*" if values == ["*"] else values


def _describe_store(config: ServeConfig) -> str:
    url = config.resolved_store_url
    if url.startswith("sqlite:///"):
        return f"{url} ({Path(url[len('sqlite:///'):]).resolve()})"
    return url


def main() -> None:
    app()
