"""Options shared by every operator command, and how the admin token is found.

Owns: ``ClientOptions`` (``--url``, ``--token``, ``--data-dir``, ``--json``, ``--timeout``: flattened into
each command by cyclopts), ``resolve_token`` (``--token``, then ``SUPERVISOR_ADMIN_TOKEN``, then the token
file of the data directory, like Jupyter's), ``CliError`` and the exit codes. Knows nothing of the
server's internals: the commands are HTTP / Socket.IO clients of a running server.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from cyclopts import Parameter

from server.operator_api.token import read_token_file, token_path

DEFAULT_URL = "http://127.0.0.1:3000"
DEFAULT_DATA_DIR = Path("data")  # the same default as ``serve --data-dir``

EXIT_OK = 0
EXIT_ERROR = 1  # the server answered with an error (unknown session, bad request, server failure)
EXIT_USAGE = 2  # bad command line
EXIT_UNREACHABLE = 3  # no server at --url (refused, timeout, not HTTP)
EXIT_AUTH = 4  # no admin token found, or the server refused it
EXIT_INTERRUPTED = 130  # Ctrl-C


class CliError(Exception):
    """Ends a command with a one-line message on stderr and ``exit_code``."""

    def __init__(self, message: str, exit_code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


@Parameter(name="*")
@dataclass(frozen=True)
class ClientOptions:
    url: Annotated[str, Parameter(env_var="SUPERVISOR_URL")] = DEFAULT_URL
    """Base URL of the server."""
    token: Annotated[str | None, Parameter(env_var="SUPERVISOR_ADMIN_TOKEN")] = None
    """Admin token. Default: SUPERVISOR_ADMIN_TOKEN, then the file admin-token in --data-dir."""
    data_dir: Path = DEFAULT_DATA_DIR
    """The server's data directory, where ``serve`` writes its generated admin token."""
    as_json: Annotated[bool, Parameter(name="--json", negative="")] = False
    """Print JSON for scripts instead of tables."""
    timeout: float = 30.0
    """Seconds to wait for the server's answer."""


DEFAULT_OPTIONS = ClientOptions()


def resolve_token(options: ClientOptions) -> str:
    if options.token:
        return options.token
    path = token_path(options.data_dir)
    token = read_token_file(path)
    if token is None:
        raise CliError(
            f"no admin token: pass --token, set SUPERVISOR_ADMIN_TOKEN, or point --data-dir at the server's "
            f"data directory (no readable {path})",
            EXIT_AUTH,
        )
    return token
