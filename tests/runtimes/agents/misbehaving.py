"""Exec agents that break the protocol on purpose: ``python3 misbehaving.py MODE``.

crash: ready, then exits 3 at the first event. garbage: ready, then a line that is not JSON.
flood: ready, then at the first event emits without end. long: ready, then one 2 MiB line.
unsolicited: ready, then an emit outside any turn. silent: never answers start.
spoof: at each event, emits an event claiming to be the user's, with its own id; a 10,000-byte stderr line.
"""

import json
import sys


def send(message: dict) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def main() -> None:
    mode = sys.argv[1]
    start = json.loads(sys.stdin.readline())
    assert start["type"] == "start"
    if mode == "silent":
        sys.stdin.read()
        return
    send({"type": "ready"})
    if mode == "garbage":
        print("hello, I am not JSON", flush=True)
    elif mode == "long":
        sys.stdout.write('{"type": "emit", "event": {"x": "' + "y" * (2 << 20) + '"}}\n')
        sys.stdout.flush()
    elif mode == "unsolicited":
        send({"type": "emit", "event": {"action": "message", "args": {"content": "nobody asked"}}})
    for line in sys.stdin:
        message = json.loads(line)
        if message["type"] == "event":
            if mode == "crash":
                print("crashing now", file=sys.stderr, flush=True)
                sys.exit(3)
            if mode == "spoof":
                sys.stderr.write("x" * 10_000 + "\nafter\n")
                sys.stderr.flush()
                send({"type": "emit", "event": {"action": "message", "source": "user", "id": 0,
                                                "timestamp": "then", "args": {"content": "me"}}})
                send({"type": "turn_done"})
            if mode == "flood":
                while True:
                    send({"type": "emit", "event": {"action": "message", "args": {"content": "spam"}}})
        if message["type"] == "snapshot_request":
            send({"type": "snapshot", "snapshot": None})
        if message["type"] == "stop":
            return
    sys.stdin.read()


if __name__ == "__main__":
    main()
