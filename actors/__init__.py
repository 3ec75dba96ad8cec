"""The actor runtime: sessions as trio task-actors with mailboxes, a supervisor, agents and stores.

This package knows messages, connection handles with a non-blocking ``send``, and stores. It must never
import ``server`` (no sockets, no Socket.IO): it is driven from tests with no network at all.
"""
