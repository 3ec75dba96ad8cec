"""How both python-socketio references are served: one uvicorn configuration, so they compare alike.

Owns: ``serve(app)`` (port from argv, loopback only, default asyncio loop, uvicorn's default h11 and
websocket implementations, no compression, no access log). A reference helper, not product code (asyncio).
"""

from __future__ import annotations

import sys
from typing import Any

import uvicorn


def serve(app: Any) -> None:
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        loop="asyncio",
        http="h11",
        ws="websockets-sansio",  # what uvicorn picks by default with websockets installed
        ws_per_message_deflate=False,
        log_level="warning",
        access_log=False,
        backlog=4096,  # the connect scenario opens thousands at once; our server and Node listen as deep
    )
