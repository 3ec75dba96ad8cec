#!/usr/bin/env python3
"""An agent in another process: the exec protocol (docs/agents.md) in plain Python, standard library only.

Run by the server as ``supervisor serve --agent 'exec:python3 examples/exec_agent.py'``. It answers each user
``message`` action with an agent message counting the replies, keeps the count in its snapshot, and says on
stderr (which goes to the server's log) when it starts and stops.
"""

import json
import sys


def send(message: dict) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def main() -> int:
    replies = 0
    session = "?"
    for line in sys.stdin:
        message = json.loads(line)
        kind = message["type"]
        if kind == "start":
            session = message["session_id"]
            replies = (message.get("snapshot") or {}).get("replies", 0)
            print(f"exec agent for {session} starting with {replies} replies", file=sys.stderr, flush=True)
            send({"type": "ready"})
        elif kind == "event":
            event = message["event"]
            if event.get("action") == "message":
                replies += 1
                content = event.get("args", {}).get("content", "")
                send({"type": "emit", "event": {
                    "action": "message",
                    "args": {"content": f"reply {replies}: {content}"},
                }})
            send({"type": "turn_done"})
        elif kind == "snapshot_request":
            send({"type": "snapshot", "snapshot": {"replies": replies}})
        elif kind == "stop":
            break
    print(f"exec agent for {session} stopping", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
