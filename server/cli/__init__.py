"""The ``supervisor`` command line: ``serve`` (``main``) and the operator commands, clients of a running
server (``status``, ``sessions``, ``events`` over the admin HTTP API; ``send`` as a Socket.IO client).

Modules: ``main`` (the cyclopts app), ``options`` (shared options, token lookup, exit codes),
``http_client`` (tiny h11 client), ``admin_client`` (admin API calls -> one-line errors), ``render``
(tables, JSON, errors) and one module per command. Must not import ``server.app`` outside ``serve``: the
operator commands must start fast.
"""
