"""An Admin UI watcher for scripts/bench --admin-ui: python-socketio's client logged in on /admin, as the
official Admin UI would be, counting what it is sent until it is stopped (SIGTERM), then printing the count.

Run with the project's interpreter (its venv has python-socketio's client and websocket-client):
``python -m bench.admin_watch URL TOKEN``. Must not know the benchmark's scenarios.
"""

from __future__ import annotations

import signal
import sys
import threading
from typing import Any

import socketio


def main(url: str, token: str) -> int:
    counts: dict[str, int] = {}
    stop = threading.Event()
    lock = threading.Lock()

    def record(event: str, *args: Any) -> None:
        with lock:
            counts[event] = counts.get(event, 0) + 1

    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    client = socketio.Client(reconnection=False)
    client.on("*", record, namespace="/admin")
    client.connect(url, namespaces=["/admin"], auth={"username": "admin", "password": token},
                   transports=["websocket"], wait_timeout=10)
    print("watching", flush=True)
    stop.wait()
    client.disconnect()
    with lock:
        print("admin-watch " + " ".join(f"{k}={v}" for k, v in sorted(counts.items())), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1], sys.argv[2]))
