"""``python -m server.cli``: the same as the ``supervisor`` console script."""

from server.cli.main import main

main()
