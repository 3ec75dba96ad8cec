"""The operator HTTP API: ``/admin/...`` and ``/metrics`` on the server's port, behind the admin token.

Named for what it is so that it is not confused with the Socket.IO Admin UI (its ``/admin`` Socket.IO
namespace lives elsewhere); the URL prefix ``/admin/`` and the CLI that calls it are unchanged.

Modules: ``api`` (``OperatorApi``: routes and handlers), ``listing`` (live + stored sessions, paginated),
``views`` (JSON shapes), ``token`` (bearer check, token file). This package root stays import-light (only
the token helpers are re-exported) because the CLI reads the token file and must start fast; import
``OperatorApi`` from ``server.operator_api.api``. Must not know about the CLI (a client of this API over
HTTP).
"""

from server.operator_api.token import (
    TOKEN_FILE_NAME,
    check_bearer,
    ensure_token_file,
    read_token_file,
    token_path,
)

__all__ = ["TOKEN_FILE_NAME", "check_bearer", "ensure_token_file", "read_token_file", "token_path"]
