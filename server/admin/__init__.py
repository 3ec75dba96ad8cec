"""The operator's HTTP surface: the admin API and ``/metrics``, behind the admin token.

Modules: ``api`` (``AdminApi``: routes and handlers), ``listing`` (live + stored sessions, paginated),
``views`` (JSON shapes), ``token`` (bearer check, token file). This package root stays import-light (only
the token helpers are re-exported) because the CLI reads the token file and must start fast; import
``AdminApi`` from ``server.admin.api``. Must not know about the CLI (a client of this API over HTTP).
"""

from server.admin.token import TOKEN_FILE_NAME, check_bearer, ensure_token_file, read_token_file, token_path

__all__ = ["TOKEN_FILE_NAME", "check_bearer", "ensure_token_file", "read_token_file", "token_path"]
