"""The ``supervisor`` command: entry point, ``serve`` and ``config show``.

Owns: the cyclopts ``App`` (trio backend), ``serve`` and ``config show`` (their options, shared, are
``server.cli.serve_options``: file < environment < flags -> one ``server.config.Config``). Operator commands
(status, sessions, events, send) live in their own modules and register on ``app``. Knows nothing of how the
server works inside: it builds a config and hands it to ``server.app``.
"""

from __future__ import annotations

import importlib.metadata
import os
import sys
from dataclasses import replace
from pathlib import Path

import cyclopts
from rich.console import Console
from rich.text import Text

from server.cli.events import events
from server.cli.send import send
from server.cli.serve_options import DEFAULT_SERVE_OPTIONS, ServeOptions
from server.cli.sessions import sessions
from server.cli.status import status
from server.config import Config
from server.config_loading import ConfigError
from server.config_toml import to_toml
from server.operator_api.token import ensure_token_file


def _version() -> str:
    try:
        return importlib.metadata.version("session-supervisor")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def _format_error(error: cyclopts.CycloptsError) -> Text:
    """cyclopts' parse errors as the project's one ``error: ...`` line (no box)."""
    message = " ".join(str(error).split())
    return Text(f"error: {message} (see --help)")


app = cyclopts.App(
    name="supervisor",
    help="Session Supervisor: a trio-native Socket.IO session server.",
    backend="trio",
    version=_version,
    version_flags=["--version"],
    error_formatter=_format_error,
    error_console=Console(stderr=True, soft_wrap=True, highlight=False, markup=False),
)
app.command(status)
app.command(sessions)
app.command(events)
app.command(send)
config_app = cyclopts.App(name="config", help="Inspect the server's configuration.")
app.command(config_app)


@app.command
async def serve(*, options: ServeOptions = DEFAULT_SERVE_OPTIONS) -> int:
    """Run the session server.

    Configuration: the TOML file of --config, then SUPERVISOR_SECTION_KEY environment variables, then
    the options below, each overriding the one before. 'supervisor config show' prints the result.
    """
    try:
        config = options.load(os.environ)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    # Imported here so that the operator commands (clients of a running server) start fast.
    import structlog

    from server.app import SupervisorApp, run_until_signal
    from server.cli.serve_errors import EXIT_USAGE, data_dir_failure, setup_failure
    from server.logs import configure_logging
    from server.runtimes import exposure_error

    configure_logging(config.logging.format, config.logging.level)
    log = structlog.get_logger("supervisor.serve")
    host = config.http.host
    refusal = exposure_error(config)
    if refusal is not None:
        print(refusal, file=sys.stderr)
        return EXIT_USAGE
    public = not config.http.listens_on_loopback and not config.gateway.allow_unauthenticated_public
    if not config.gateway.authenticates and public:
        print(
            f"error: refusing to listen on {host} without client authentication; "
            "pass --api-key (or SUPERVISOR_API_KEY), --auth-hook, or --allow-unauthenticated-public",
            file=sys.stderr,
        )
        return EXIT_USAGE
    data_dir = config.store.data_dir
    token_source = "configured (--admin-token, SUPERVISOR_ADMIN_TOKEN or [admin] token)"
    try:
        if config.store.url is None:
            data_dir.mkdir(parents=True, exist_ok=True)
        if config.admin.token is None:
            token, token_file = ensure_token_file(data_dir)
            config = config.with_(admin=replace(config.admin, token=token))
            token_source = str(token_file)
    except OSError as exc:
        code, message = data_dir_failure(data_dir, exc)
        print(f"error: {message}", file=sys.stderr)
        return code
    try:
        server = SupervisorApp(config)
    except (ValueError, TypeError, ImportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    started = False

    def ready(address: tuple[str, int]) -> None:
        nonlocal started
        started = True
        # Warnings once the server is up: a failure to start prints its one error line and nothing else.
        if not config.gateway.authenticates:
            log.warning("serve.no_authentication", hint="pass --api-key to require a key from clients")
        print(f"Session Supervisor listening on http://{address[0]}:{address[1]}", flush=True)
        print(f"Store: {_describe_store(config)}", flush=True)
        print(f"Admin token: {token_source}", flush=True)

    try:
        await run_until_signal(server, on_ready=ready)
    except BaseException as exc:
        failure = None if started else setup_failure(exc, host, config.http.port)
        if failure is None:
            raise
        print(f"error: {failure[1]}", file=sys.stderr)
        return failure[0]
    return 0


@config_app.command
def show(*, options: ServeOptions = DEFAULT_SERVE_OPTIONS) -> int:
    """Print the effective configuration as TOML (secrets masked): the file of --config, then the
    SUPERVISOR_SECTION_KEY environment variables, then the options, as 'serve' would use them."""
    try:
        config = options.load(os.environ)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(to_toml(config, mask=True))
    return 0


def _describe_store(config: Config) -> str:
    url = config.store.resolved_url
    if url.startswith("sqlite:///"):
        return f"{url} ({Path(url[len('sqlite:///'):]).resolve()})"
    return url


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:  # Ctrl-C outside a command's own handling: no traceback
        sys.exit(130)
