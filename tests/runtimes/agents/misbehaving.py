"""Exec agents that break the protocol on purpose: ``python3 misbehaving.py MODE``.

crash: ready, then exits 3 at the first event. garbage: ready, then a line that is not JSON.
flood: ready, then at the first event emits without end. long: ready, then one 2 MiB line.
unsolicited: ready, then an emit outside any turn. silent: never answers start.
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
            if mode == "flood":
                while True:
                    send({"type": "emit", "event": {"action": "message", "args": {"content": "spam"}}})
        if message["type"] == "stop":
            return
    sys.stdin.read()


if __name__ == "__main__":
    main()
