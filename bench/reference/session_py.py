"""Reference session server on python-socketio's AsyncServer + uvicorn (default asyncio loop).

Owns: the benchmark's session workload, done the plain python-socketio way, to compare our server with:
clients connect to /socket.io/ with query `conversation_id` and `latest_event_id`; each connection joins the
room of its conversation and first receives, as `oh_event`, every stored event with id > latest_event_id;
`oh_user_action` (a JSON object) gets the next per-conversation id (from 0), is kept in memory, is emitted to
the room as `oh_event` (the payload as sent plus id, source, timestamp) and acked with {"id": N}.
Must not know: the benchmark driver, our server. No persistence and no passivation (a reference, not product
code: asyncio, memory only).

Usage: python bench/reference/session_py.py PORT
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import parse_qs

import socketio
from _uvicorn import serve  # bench/reference is on sys.path: the script's own folder
from socketio.exceptions import ConnectionRefusedError as Refused

sio = socketio.AsyncServer(async_mode="asgi", cors_allowed_origins="*")
history: dict[str, list[dict[str, Any]]] = {}
conversation_of: dict[str, str] = {}


@sio.event
async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
    query = parse_qs(environ.get("QUERY_STRING", ""))
    conversation = query.get("conversation_id", [""])[0]
    if not conversation:
        raise Refused("conversation_id is required")
    try:
        latest = int(query.get("latest_event_id", ["-1"])[0])
    except ValueError as err:
        raise Refused("latest_event_id must be an integer") from err
    conversation_of[sid] = conversation
    await sio.enter_room(sid, conversation)
    for event in history.setdefault(conversation, [])[max(latest + 1, 0) :]:
        await sio.emit("oh_event", event, to=sid)


@sio.event
async def disconnect(sid: str, reason: Any = None) -> None:
    conversation_of.pop(sid, None)


@sio.on("oh_user_action")
async def oh_user_action(sid: str, data: Any) -> dict[str, Any]:
    conversation = conversation_of.get(sid)
    if conversation is None or not isinstance(data, dict):
        return {"error": "oh_user_action needs a JSON object on a joined connection"}
    events = history[conversation]
    event = {
        **data,
        "id": len(events),
        "source": "user",
        "timestamp": dt.datetime.now(dt.UTC).isoformat(),
    }
    events.append(event)
    await sio.emit("oh_event", event, room=conversation)
    return {"id": event["id"]}


app = socketio.ASGIApp(sio, socketio_path="socket.io")

if __name__ == "__main__":
    serve(app)
