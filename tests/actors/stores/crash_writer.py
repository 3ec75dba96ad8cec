"""Run as a script by test_sqlite_durability: append to a SqliteStore forever, acknowledging each event.

Usage: python crash_writer.py DB_PATH RUN_LABEL SESSION...
For every session, one task appends events one at a time, continuing the stored log, and prints
``ack <session> <id>`` on stdout (flushed) as soon as ``append`` returned. The parent kills it with SIGKILL.
"""

from __future__ import annotations

import logging
import sys

import structlog
import trio

from actors.events import StoredEvent
from actors.stores import SqliteStore


async def main(path: str, run: str, sessions: list[str]) -> None:
    store = SqliteStore(path)
    await store.open()

    async def writer(session_id: str) -> None:
        record = await store.create(session_id, None)
        next_id = record.last_event_id + 1
        while True:
            await store.append(session_id, [StoredEvent.create(next_id, {"run": run, "pad": "x" * 200})])
            sys.stdout.write(f"ack {session_id} {next_id}\n")
            sys.stdout.flush()
            next_id += 1

    async with trio.open_nursery() as nursery:
        for session_id in sessions:
            nursery.start_soon(writer, session_id)


if __name__ == "__main__":
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    trio.run(main, sys.argv[1], sys.argv[2], sys.argv[3:])
